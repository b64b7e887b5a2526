// What every driver needs from the receiver: finding it, picking a stream, deciding when to relax.
using System.Collections.Generic;
using UnityEngine;

namespace SerDaemon.Bridge
{
    /// <summary>Helpers shared by the drivers (the raw SkinnedMeshRenderer one and the optional VRM ones).</summary>
    public static class SerDaemonScene
    {
        /// <summary>The receiver in the loaded scenes, or null.</summary>
        public static SerDaemonReceiver FindReceiver()
        {
#if SERDAEMON_HAS_FIND_FIRST
            // Unity 2021.3.18+, 2022.2+: FindObjectOfType is obsolete (and slower) there.
            return Object.FindFirstObjectByType<SerDaemonReceiver>();
#else
            return Object.FindObjectOfType<SerDaemonReceiver>();
#endif
        }

        /// <summary>
        /// The receiver a driver should use now: <paramref name="current"/> while it is alive and enabled, else
        /// the scene's (a scene change destroyed it; a DontDestroyOnLoad avatar then finds the new scene's
        /// receiver on its next frame). A failed search waits a second before the next, so this stays cheap.
        /// </summary>
        public static SerDaemonReceiver Reacquire(SerDaemonReceiver current, ref float nextLookup)
        {
            if (current != null && current.isActiveAndEnabled) return current;
            if (Time.unscaledTime < nextLookup) return current;
            var found = FindReceiver();
            if (found != null && found.isActiveAndEnabled) return found;
            nextLookup = Time.unscaledTime + 1f;
            return current;
        }

        /// <summary>
        /// The values a face following <paramref name="stream"/> should show now, from value set
        /// <paramref name="set"/>; null means "relax to rest": no receiver, stream not heard yet, its input
        /// device gone ("no_audio" status), or (with relaxWhenStale) nothing from it for the receiver's
        /// staleAfterSeconds.
        /// </summary>
        public static Dictionary<string, float> TargetValues(SerDaemonReceiver receiver, string stream, string set, bool relaxWhenStale)
        {
            if (receiver == null) return null;
            var s = receiver.GetState(stream);
            if (s == null || s.NoAudio || (relaxWhenStale && receiver.IsStateStale(s))) return null;
            return s.Values(set);
        }
    }
}
