// VRM 0.x avatars (UniVRM): the daemon's "vrm0" weights through VRMBlendShapeProxy.AccumulateValue + Apply.
// Compiled only when UniVRM's com.vrmc.univrm package is installed (see SerDaemon.Bridge.Vrm0.asmdef).
using System;
using System.Collections.Generic;
using UnityEngine;
using VRM;

namespace SerDaemon.Bridge
{
    /// <summary>
    /// Drives a VRM 0.x avatar's BlendShape clips (Joy, Angry, Sorrow, Fun, Neutral, and others by name)
    /// from the daemon's "vrm0" weights: every frame it accumulates each weight on the avatar's
    /// VRMBlendShapeProxy and calls Apply once, the way UniVRM asks scripts that share the face (lip sync,
    /// blink) to do it. Put it on the avatar root (next to VRMBlendShapeProxy). A clip the avatar's
    /// BlendShapeAvatar lacks is warned about once (UniVRM itself ignores it silently). Reads the daemon's
    /// "vrm0" weights (OSC /ser/vrm0/..., WebSocket), the VMC protocol's clips ("vmc") when the receiver
    /// listens to ser-daemon --osc vmc, or the "vrm" weights renamed to VRM 0.x clips.
    /// </summary>
    [AddComponentMenu("SER Daemon/VRM 0.x Emotion Driver")]
    [DefaultExecutionOrder(SkinnedMeshEmotionDriver.ExecutionOrder)]
    public sealed class Vrm0EmotionDriver : ExpressionDriverBase
    {
        [Tooltip("The avatar's proxy (this GameObject's when left empty).")]
        public VRMBlendShapeProxy proxy;

        static readonly string[] Sets = { EmotionState.SetVrm0, EmotionState.SetVmc, EmotionState.SetVrm };
        /// <summary>"vrm0", else VMC's "vmc" (the same clips), else "vrm" renamed (happy = Joy, sad = Sorrow, relaxed = Fun).</summary>
        protected override string[] ValueSets { get { return Sets; } }
        protected override bool UsesVrm1Names { get { return false; } }

        VRMBlendShapeProxy boundProxy;
        BlendShapeAvatar boundAvatar;

        protected override bool AvatarChanged()
        {
            if (!ReferenceEquals(proxy, boundProxy) || (!ReferenceEquals(boundProxy, null) && boundProxy == null)) return true;
            return proxy != null && !ReferenceEquals(proxy.BlendShapeAvatar, boundAvatar);
        }

        protected override IBlendshapeSink CreateSink()
        {
            if (proxy == null) proxy = GetComponent<VRMBlendShapeProxy>();
            boundProxy = proxy;
            boundAvatar = proxy != null ? proxy.BlendShapeAvatar : null;
            return proxy != null ? new ProxySink(proxy) : null;
        }

        protected override void Commit()
        {
            if (proxy != null) proxy.Apply();
        }

        /// <summary>The daemon's VRM 0.x clip names to UniVRM keys: presets by name (any case), others as unknown clips.</summary>
        public static BlendShapeKey KeyFor(string name)
        {
            switch ((name ?? "").ToLowerInvariant())
            {
                case "joy": return BlendShapeKey.CreateFromPreset(BlendShapePreset.Joy);
                case "angry": return BlendShapeKey.CreateFromPreset(BlendShapePreset.Angry);
                case "sorrow": return BlendShapeKey.CreateFromPreset(BlendShapePreset.Sorrow);
                case "fun": return BlendShapeKey.CreateFromPreset(BlendShapePreset.Fun);
                case "neutral": return BlendShapeKey.CreateFromPreset(BlendShapePreset.Neutral);
                default: return BlendShapeKey.CreateUnknown(name);
            }
        }

        sealed class ProxySink : IBlendshapeSink, IExpressionInfo
        {
            readonly VRMBlendShapeProxy proxy;
            readonly List<BlendShapeKey> keys = new List<BlendShapeKey>();
            readonly List<string> names = new List<string>();
            readonly List<BlendShapeClip> clips = new List<BlendShapeClip>();

            public ProxySink(VRMBlendShapeProxy proxy) { this.proxy = proxy; }

            public int GetIndex(string name)
            {
                int i = names.IndexOf(name);
                if (i >= 0) return i;
                var key = KeyFor(name);
                // UniVRM ignores a clip the avatar lacks without a word: look it up, so the mapper warns once.
                var avatar = proxy.BlendShapeAvatar;
                var clip = avatar != null ? avatar.GetClip(key) : null;
                if (avatar != null && clip == null) return -1;
                keys.Add(key); // made once per name, reused every frame
                names.Add(name);
                clips.Add(clip);
                return names.Count - 1;
            }

            public bool IsBinary(int index) { return clips[index] != null && clips[index].IsBinary; }

            public string Note(int index)
            {
                return IsBinary(index)
                    ? "clip '" + names[index] + "' is IsBinary (UniVRM rounds its value to 0 or 1): the driver writes it as 1 while it leads the emotions and reaches Binary Threshold, else 0"
                    : null;
            }

            public int Count { get { return names.Count; } }
            public string GetName(int index) { return names[index]; }
            public void SetWeight(int index, float weight) { proxy.AccumulateValue(keys[index], weight); }
        }
    }
}
