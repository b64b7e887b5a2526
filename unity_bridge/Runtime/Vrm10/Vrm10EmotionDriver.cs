// VRM 1.0 avatars (UniVRM): the daemon's "vrm" weights through Vrm10RuntimeExpression.SetWeight.
// Compiled only when UniVRM's com.vrmc.vrm package is installed (see SerDaemon.Bridge.Vrm10.asmdef).
using System.Collections.Generic;
using UnityEngine;
using UniVRM10;

namespace SerDaemon.Bridge
{
    /// <summary>
    /// Drives a VRM 1.0 avatar's expressions (happy, angry, sad, relaxed, surprised, neutral, and custom
    /// ones by name) from the daemon's "vrm" weights, through UniVRM's expression API, so UniVRM's own
    /// blendshape/material binding, overrides (blink, lip sync) and its LateUpdate rewriting all keep
    /// working. Put it on the avatar root (next to Vrm10Instance). Runs before Vrm10Instance (11000)
    /// in LateUpdate, so the weights set here are applied in the same frame.
    /// </summary>
    [AddComponentMenu("SER Daemon/VRM 1.0 Emotion Driver")]
    [DefaultExecutionOrder(10900)]
    public sealed class Vrm10EmotionDriver : ExpressionDriverBase
    {
        [Tooltip("The avatar (this GameObject's Vrm10Instance when left empty).")]
        public Vrm10Instance vrmInstance;

        protected override string ValueSet { get { return EmotionState.SetVrm; } }

        protected override IBlendshapeSink CreateSink()
        {
            if (vrmInstance == null) vrmInstance = GetComponent<Vrm10Instance>();
            if (vrmInstance == null) return null;
            var runtime = vrmInstance.Runtime;
            return runtime != null && runtime.Expression != null ? new ExpressionSink(runtime.Expression) : null;
        }

        /// <summary>The daemon's VRM 1.0 names to UniVRM keys: the emotion presets, anything else as a custom expression.</summary>
        public static ExpressionKey KeyFor(string name)
        {
            switch (name)
            {
                case "happy": return ExpressionKey.Happy;
                case "angry": return ExpressionKey.Angry;
                case "sad": return ExpressionKey.Sad;
                case "relaxed": return ExpressionKey.Relaxed;
                case "surprised": return ExpressionKey.Surprised;
                case "neutral": return ExpressionKey.Neutral;
                default: return ExpressionKey.CreateCustom(name);
            }
        }

        sealed class ExpressionSink : IBlendshapeSink
        {
            readonly Vrm10RuntimeExpression expression;
            readonly List<ExpressionKey> keys = new List<ExpressionKey>();
            readonly List<string> names = new List<string>();

            public ExpressionSink(Vrm10RuntimeExpression expression)
            {
                this.expression = expression;
                foreach (var k in expression.ExpressionKeys) { keys.Add(k); names.Add(k.ToString()); }
            }

            public int GetIndex(string name)
            {
                var key = KeyFor(name);
                for (int i = 0; i < keys.Count; i++) if (keys[i].Equals(key)) return i;
                return -1; // the avatar lacks it: the mapper warns once
            }

            public int Count { get { return keys.Count; } }
            public string GetName(int index) { return names[index]; }
            public void SetWeight(int index, float weight) { expression.SetWeight(keys[index], weight); }
        }
    }
}
