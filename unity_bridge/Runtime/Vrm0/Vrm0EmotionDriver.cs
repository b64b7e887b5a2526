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
    /// blink) to do it. Put it on the avatar root (next to VRMBlendShapeProxy). UniVRM ignores clips the
    /// avatar lacks. Reads the WebSocket's "vrm0" weights, or the VMC protocol's clips ("vmc") when the
    /// receiver listens to ser-daemon --osc vmc.
    /// </summary>
    [AddComponentMenu("SER Daemon/VRM 0.x Emotion Driver")]
    [DefaultExecutionOrder(SkinnedMeshEmotionDriver.ExecutionOrder)]
    public sealed class Vrm0EmotionDriver : ExpressionDriverBase
    {
        [Tooltip("The avatar's proxy (this GameObject's when left empty).")]
        public VRMBlendShapeProxy proxy;

        protected override string ValueSet { get { return EmotionState.SetVrm0; } }

        /// <summary>Over VMC (ser-daemon --osc vmc) the same clips arrive as the "vmc" set.</summary>
        protected override string FallbackValueSet { get { return EmotionState.SetVmc; } }

        protected override IBlendshapeSink CreateSink()
        {
            if (proxy == null) proxy = GetComponent<VRMBlendShapeProxy>();
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

        sealed class ProxySink : IBlendshapeSink
        {
            readonly VRMBlendShapeProxy proxy;
            readonly List<BlendShapeKey> keys = new List<BlendShapeKey>();
            readonly List<string> names = new List<string>();

            public ProxySink(VRMBlendShapeProxy proxy) { this.proxy = proxy; }

            public int GetIndex(string name)
            {
                int i = names.IndexOf(name);
                if (i >= 0) return i;
                keys.Add(KeyFor(name)); // made once per name, reused every frame
                names.Add(name);
                return names.Count - 1;
            }

            public int Count { get { return names.Count; } }
            public string GetName(int index) { return names[index]; }
            public void SetWeight(int index, float weight) { proxy.AccumulateValue(keys[index], weight); }
        }
    }
}
