// VRM 0.x clip names <-> VRM 1.0 expression presets, so any driver reads any of the daemon's value sets (plain C#).
using System;
using System.Collections.Generic;

namespace SerDaemon.Bridge
{
    /// <summary>
    /// The daemon's VRM 0.x clips (Joy, Angry, Sorrow, Fun, Neutral, Surprised) and VRM 1.0 presets (happy,
    /// angry, sad, relaxed, neutral, surprised) name the same six faces; UniVRM's own migration pairs them
    /// the same way (Joy = happy, Sorrow = sad, Fun = relaxed). Other names pass unchanged.
    /// </summary>
    public static class ExpressionNames
    {
        static readonly string[] Vrm0 = { "Joy", "Angry", "Sorrow", "Fun", "Neutral", "Surprised" };
        static readonly string[] Vrm1 = { "happy", "angry", "sad", "relaxed", "neutral", "surprised" };

        /// <summary>True for the value sets named with VRM 0.x clips ("vrm0", and "vmc": VMC carries VRM 0.x clips).</summary>
        public static bool IsVrm0Set(string set) { return set == EmotionState.SetVrm0 || set == EmotionState.SetVmc; }

        /// <summary>A VRM 0.x clip name (any case) as the VRM 1.0 preset; other names unchanged.</summary>
        public static string ToVrm1(string name)
        {
            for (int i = 0; i < Vrm0.Length; i++) if (string.Equals(name, Vrm0[i], StringComparison.OrdinalIgnoreCase)) return Vrm1[i];
            return name;
        }

        /// <summary>A VRM 1.0 preset (any case) as the VRM 0.x clip name; other names unchanged.</summary>
        public static string ToVrm0(string name)
        {
            for (int i = 0; i < Vrm1.Length; i++) if (string.Equals(name, Vrm1[i], StringComparison.OrdinalIgnoreCase)) return Vrm0[i];
            return name;
        }

        /// <summary>
        /// Fill <paramref name="into"/> (cleared first) with <paramref name="from"/>'s values under the other
        /// version's names; two names landing on one keep the larger value. Allocation-free once warm.
        /// </summary>
        public static void Translate(Dictionary<string, float> from, Dictionary<string, float> into, bool toVrm1)
        {
            into.Clear();
            if (from == null) return;
            foreach (var kv in from)
            {
                string n = toVrm1 ? ToVrm1(kv.Key) : ToVrm0(kv.Key);
                float old;
                if (!into.TryGetValue(n, out old) || kv.Value > old) into[n] = kv.Value;
            }
        }
    }
}
