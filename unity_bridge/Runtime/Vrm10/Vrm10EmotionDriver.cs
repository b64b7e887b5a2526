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

        static readonly string[] Sets = { EmotionState.SetVrm, EmotionState.SetVrm0, EmotionState.SetVmc };
        /// <summary>"vrm" first; VRM 0.x clips ("vrm0", VMC's "vmc") are renamed (Joy = happy, Sorrow = sad, Fun = relaxed).</summary>
        protected override string[] ValueSets { get { return Sets; } }
        protected override bool UsesVrm1Names { get { return true; } }

        Vrm10Instance boundInstance;
        Vrm10Runtime boundRuntime;

        protected override bool AvatarChanged()
        {
            // A destroyed or replaced instance, or a new runtime (the model was loaded again).
            if (!ReferenceEquals(vrmInstance, boundInstance) || (!ReferenceEquals(boundInstance, null) && boundInstance == null)) return true;
            return vrmInstance != null && !ReferenceEquals(vrmInstance.Runtime, boundRuntime);
        }

        protected override IBlendshapeSink CreateSink()
        {
            if (vrmInstance == null) vrmInstance = GetComponent<Vrm10Instance>(); // also after the old one was destroyed
            boundInstance = vrmInstance;
            boundRuntime = null;
            if (vrmInstance == null) return null;
            var runtime = vrmInstance.Runtime;
            boundRuntime = runtime;
            if (runtime == null || runtime.Expression == null) return null;
            return new ExpressionSink(runtime.Expression, vrmInstance.Vrm != null ? vrmInstance.Vrm.Expression : null) { Deadzone = shaping.deadzone };
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

        /// <summary>
        /// What to warn about one expression, or null: IsBinary (shown fully or not at all) and "block"
        /// overrides (UniVRM switches blink, look-at or lip sync off while its weight is above 0).
        /// </summary>
        public static string Describe(string name, VRM10Expression clip, float deadzone)
        {
            if (clip == null) return null;
            var blocks = new List<string>();
            // By name, not by enum value: older UniVRM spelled them None/Block/Blend.
            if (string.Equals(clip.OverrideBlink.ToString(), "block", System.StringComparison.OrdinalIgnoreCase)) blocks.Add("blink");
            if (string.Equals(clip.OverrideLookAt.ToString(), "block", System.StringComparison.OrdinalIgnoreCase)) blocks.Add("look-at");
            if (string.Equals(clip.OverrideMouth.ToString(), "block", System.StringComparison.OrdinalIgnoreCase)) blocks.Add("lip sync");
            string note = null;
            if (clip.IsBinary)
                note = "expression '" + name + "' is IsBinary (UniVRM rounds its weight to 0 or 1): the driver writes it as 1 while it leads the emotions and reaches Binary Threshold, else 0";
            if (blocks.Count > 0)
                note = (note != null ? note + "; it" : "expression '" + name + "'") + " blocks " + string.Join(", ", blocks.ToArray()) +
                       " whenever its weight is above 0: the driver writes exactly 0 at rest (Deadzone " + deadzone.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture) +
                       "), but while this emotion shows, UniVRM switches those off (the avatar's own setting, in its VRM10Object)";
            return note;
        }

        sealed class ExpressionSink : IBlendshapeSink, IExpressionInfo
        {
            readonly Vrm10RuntimeExpression expression;
            readonly List<ExpressionKey> keys = new List<ExpressionKey>();
            readonly List<string> names = new List<string>();
            readonly List<VRM10Expression> clips = new List<VRM10Expression>();
            public float Deadzone;

            public ExpressionSink(Vrm10RuntimeExpression expression, VRM10ObjectExpression avatar)
            {
                this.expression = expression;
                foreach (var k in expression.ExpressionKeys)
                {
                    keys.Add(k);
                    names.Add(k.ToString());
                    VRM10Expression clip = null;
                    if (avatar != null)
                        foreach (var c in avatar.Clips)
                            if (c.Clip != null && avatar.CreateKey(c.Clip).Equals(k)) { clip = c.Clip; break; }
                    clips.Add(clip);
                }
            }

            public bool IsBinary(int index) { return clips[index] != null && clips[index].IsBinary; }
            public string Note(int index) { return Describe(names[index], clips[index], Deadzone); }

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
