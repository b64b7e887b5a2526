// Maps emotion probabilities or expression weights onto named blendshapes (plain C#, no UnityEngine).
using System;
using System.Collections.Generic;

namespace SerDaemon.Bridge
{
    /// <summary>Where the mapper writes weights: a SkinnedMeshRenderer in Unity, anything in tests.</summary>
    public interface IBlendshapeSink
    {
        /// <summary>Index of the blendshape with exactly this name, or -1.</summary>
        int GetIndex(string name);
        int Count { get; }
        string GetName(int index);
        void SetWeight(int index, float weight);
    }

    /// <summary>
    /// Optional, for sinks that know more about their expressions than a name (the VRM drivers): whether
    /// one is IsBinary (the avatar SDK rounds its weight to 0 or 1) and a one-line note worth a warning
    /// (e.g. "blocks blink while it shows"), or null.
    /// </summary>
    public interface IExpressionInfo
    {
        bool IsBinary(int index);
        string Note(int index);
    }

    /// <summary>One source value driving one blendshape: weight += Gain * source.</summary>
    [Serializable]
    public class BlendshapeBinding
    {
        /// <summary>A source name: a label ("happy") or an expression/blendshape name ("Joy", "mouthSmileLeft").</summary>
        public string Source;
        /// <summary>The blendshape name on the mesh.</summary>
        public string Blendshape;
        public float Gain = 1f;

        public BlendshapeBinding() { }
        public BlendshapeBinding(string source, string blendshape, float gain = 1f)
        {
            Source = source; Blendshape = blendshape; Gain = gain;
        }
    }

    /// <summary>
    /// Turns source values (0..1) into blendshape weights (0..WeightScale, 100 for Unity):
    /// each target's value is the sum of Gain * source over its bindings (clamped to 0..1), or, with no
    /// binding for a source and PassThrough on, the source itself on the blendshape of the same name.
    /// Values then follow their targets with exponential smoothing of time constant SmoothingSeconds
    /// (a step reaches 63% after one time constant), so a jittery stream still moves the face smoothly.
    /// Names the sink lacks are tried case-insensitively, else reported once through MissingName and
    /// skipped. Update never throws: a failing sink is reported once through Error.
    ///
    /// Between the sum and the smoothing each target's value is shaped, in this order (see the fields):
    /// Deadzone (values at or below it become exactly 0, the rest is stretched back to 0..1, so an avatar
    /// SDK that treats any weight above 0 as "showing", like UniVRM's `block` overrides, sees rest as rest),
    /// Gain, NormalizeToPeak, DominantOnly. Targets an IExpressionInfo sink marks IsBinary are written as
    /// exactly 0 or 1 (see BinaryThreshold) instead of a fraction the SDK would round away.
    /// </summary>
    public sealed class BlendshapeMapper
    {
        public readonly List<BlendshapeBinding> Bindings = new List<BlendshapeBinding>();
        /// <summary>With no binding for a source, drive the blendshape that has the source's name.</summary>
        public bool PassThrough = true;
        public float SmoothingSeconds = 0.15f;
        public float WeightScale = 100f;
        /// <summary>
        /// Write every driven blendshape every Update, not only when its weight changed: needed when something
        /// else (an Animator, UniVRM, a lip-sync script) writes the same blendshapes each frame.
        /// </summary>
        public bool WriteEveryFrame;
        /// <summary>A smoothed value this close to its target (0..1 units) takes the target exactly.</summary>
        public float SnapDistance = 5e-4f;
        /// <summary>Called once per blendshape name the sink does not have.</summary>
        public Action<string> MissingName;
        /// <summary>Called once per distinct failure of the sink (exceptions are caught).</summary>
        public Action<string> Error;
        /// <summary>Called once per target with an IExpressionInfo note (IsBinary, override settings).</summary>
        public Action<string> Notice;

        /// <summary>
        /// Values (0..1, after the bindings' sum) at or below this become exactly 0; above it they are
        /// stretched back to 0..1, (v - Deadzone) / (1 - Deadzone), so nothing jumps. The daemon's weights
        /// never reach exactly 0 at rest (0.003-0.06): without a deadzone they keep an expression "showing".
        /// </summary>
        public float Deadzone;
        /// <summary>Multiplies every value after the deadzone (then clamped to 1): the daemon's weights for a clear emotion are often 0.2-0.4.</summary>
        public float Gain = 1f;
        /// <summary>
        /// Scale the emotion targets (every target except one named "neutral", any case) so the strongest reaches 1,
        /// whenever it is above the deadzone: a confident emotion shows at full weight whatever its raw size.
        /// </summary>
        public bool NormalizeToPeak;
        /// <summary>Show only the strongest emotion target (not "neutral"); the others go to 0. A new leader takes over when it beats the current one by DominantMargin.</summary>
        public bool DominantOnly;
        /// <summary>Hysteresis of DominantOnly and of IsBinary targets' leader (0..1 units), so two close emotions do not flicker.</summary>
        public float DominantMargin = 0.05f;
        /// <summary>
        /// IsBinary targets: written as 1 while the target is the strongest emotion target and its smoothed
        /// value is at least this, else 0 (off again below half of it). 0..1 units, after deadzone and gain.
        /// </summary>
        public float BinaryThreshold = 0.1f;

        IBlendshapeSink sink;
        readonly Dictionary<string, float> sources = new Dictionary<string, float>(StringComparer.Ordinal);
        readonly Dictionary<string, Target> targets = new Dictionary<string, Target>(StringComparer.Ordinal);
        readonly HashSet<string> reported = new HashSet<string>(StringComparer.Ordinal);
        readonly List<string> scratch = new List<string>();
        readonly HashSet<string> bound = new HashSet<string>(StringComparer.Ordinal);

        sealed class Target
        {
            public int Index = -2; // -2 unresolved, -1 missing
            public float Goal, Value;
            public float LastWritten = float.NaN;
            public bool Binary, BinaryOn, Rest;
        }

        Target dominant; // DominantOnly's current leader
        Target binaryLeader; // the strongest emotion target, for IsBinary ones

        public BlendshapeMapper(IBlendshapeSink sink = null) { this.sink = sink; }

        public IBlendshapeSink Sink
        {
            get { return sink; }
            set { sink = value; Rebind(); }
        }

        /// <summary>Forget resolved indices and reported names (after the mesh or bindings change).</summary>
        public void Rebind()
        {
            foreach (var t in targets.Values) { t.Index = -2; t.LastWritten = float.NaN; t.Binary = false; t.BinaryOn = false; }
            reported.Clear();
            dominant = null;
        }

        public void SetSource(string name, float value)
        {
            if (name == null || (sources.Count >= 1024 && !sources.ContainsKey(name))) return;
            sources[name] = EmotionState.Sanitize(value);
        }

        /// <summary>Replace all sources with these values (names missing here go to 0). Allocation-free.</summary>
        public void SetSources(Dictionary<string, float> values)
        {
            ZeroSources();
            if (values == null) return;
            foreach (var kv in values) SetSource(kv.Key, kv.Value);
        }

        /// <summary>Replace all sources with these values (enumerating an interface allocates; prefer the Dictionary overload).</summary>
        public void SetSources(IDictionary<string, float> values)
        {
            var dict = values as Dictionary<string, float>;
            if (dict != null || values == null) { SetSources(dict); return; }
            ZeroSources();
            foreach (var kv in values) SetSource(kv.Key, kv.Value);
        }

        void ZeroSources()
        {
            scratch.Clear();
            foreach (var k in sources.Keys) scratch.Add(k);
            for (int i = 0; i < scratch.Count; i++) sources[scratch[i]] = 0f;
        }

        /// <summary>All sources to 0: the face relaxes (with smoothing) to its rest pose.</summary>
        public void ClearSources() { ZeroSources(); }

        /// <summary>
        /// Put the face at rest at once: every source and smoothed value to 0, and 0 written to every driven
        /// blendshape the sink has (for OnDisable: a disabled driver must not leave an expression behind).
        /// </summary>
        public void Reset()
        {
            ZeroSources();
            foreach (var kv in targets)
            {
                var t = kv.Value;
                t.Goal = 0f;
                t.Value = 0f;
                t.LastWritten = float.NaN; // force the write
                Write(kv.Key, t);
            }
        }

        /// <summary>The current smoothed weight (0..WeightScale) of a blendshape, or -1 if not driven.</summary>
        public float GetWeight(string blendshape)
        {
            Target t;
            return targets.TryGetValue(blendshape, out t) ? Scale(t.Value) : -1f;
        }

        /// <summary>The driven blendshape names, in first-seen order of the dictionary.</summary>
        public IEnumerable<string> TargetNames { get { return targets.Keys; } }

        float Scale(float v)
        {
            float s = float.IsNaN(WeightScale) || float.IsInfinity(WeightScale) || WeightScale < 0 ? 0f : WeightScale;
            return (v < 0f ? 0f : (v > 1f ? 1f : v)) * s;
        }

        Target GetTarget(string name)
        {
            Target t;
            if (!targets.TryGetValue(name, out t))
            {
                t = new Target();
                t.Rest = string.Equals(name, "neutral", StringComparison.OrdinalIgnoreCase);
                targets[name] = t;
            }
            return t;
        }

        /// <summary>Advance smoothing by dt seconds and write changed weights to the sink.</summary>
        public void Update(float dt)
        {
            if (float.IsNaN(dt) || dt < 0f) dt = 0f;
            foreach (var t in targets.Values) t.Goal = 0f;
            bound.Clear();
            for (int i = 0; i < Bindings.Count; i++)
            {
                var b = Bindings[i];
                if (b == null || string.IsNullOrEmpty(b.Source) || string.IsNullOrEmpty(b.Blendshape)) continue;
                bound.Add(b.Source);
                float v;
                sources.TryGetValue(b.Source, out v);
                // A NaN or infinite gain counts as 0: infinity times a 0 source is NaN, and a NaN goal would stick.
                float g = float.IsNaN(b.Gain) || float.IsInfinity(b.Gain) ? 0f : b.Gain;
                GetTarget(b.Blendshape).Goal += g * v;
            }
            if (PassThrough)
                foreach (var kv in sources)
                    if (!bound.Contains(kv.Key) && kv.Key.Length > 0) GetTarget(kv.Key).Goal += kv.Value;

            Shape();

            float alpha = SmoothingSeconds > 1e-6f ? 1f - (float)Math.Exp(-dt / SmoothingSeconds) : 1f;
            if (float.IsNaN(alpha)) alpha = 1f; // SmoothingSeconds infinite or NaN: no smoothing rather than a NaN face
            foreach (var kv in targets)
            {
                var t = kv.Value;
                float goal = t.Goal; // shaped: finite, 0..1
                if (float.IsNaN(t.Value) || float.IsInfinity(t.Value)) t.Value = 0f;
                t.Value += (goal - t.Value) * alpha;
                if (Math.Abs(goal - t.Value) < SnapDistance) t.Value = goal; // settle exactly (0.05 on a 0..100 scale)
            }
            binaryLeader = Leader(binaryLeader, true);
            foreach (var kv in targets) Write(kv.Key, kv.Value);
        }

        static float Finite(float v, float fallback) { return float.IsNaN(v) || float.IsInfinity(v) ? fallback : v; }

        /// <summary>Deadzone, gain, normalisation and dominant-only on every target's goal (allocation-free).</summary>
        void Shape()
        {
            float dz = Finite(Deadzone, 0f);
            dz = dz < 0f ? 0f : (dz > 0.999f ? 0.999f : dz);
            float gain = Finite(Gain, 0f);
            if (gain < 0f) gain = 0f;
            float peak = 0f;
            foreach (var t in targets.Values)
            {
                float g = EmotionState.Sanitize(t.Goal); // NaN -> 0, clamped to 0..1
                g = g <= dz ? 0f : (g - dz) / (1f - dz);
                g = EmotionState.Sanitize(g * gain);
                t.Goal = g;
                if (!t.Rest && g > peak) peak = g;
            }
            if (NormalizeToPeak && peak > 0f)
                foreach (var t in targets.Values) if (!t.Rest) t.Goal = EmotionState.Sanitize(t.Goal / peak);
            if (DominantOnly)
            {
                dominant = Leader(dominant, false);
                foreach (var t in targets.Values) if (!t.Rest && t != dominant) t.Goal = 0f;
            }
        }

        /// <summary>
        /// The strongest emotion target (not "neutral") by goal, or by smoothed value; the current one stays
        /// unless another beats it by DominantMargin. Null when every emotion target is at 0.
        /// </summary>
        Target Leader(Target current, bool byValue)
        {
            Target best = null;
            float bestV = 0f;
            foreach (var t in targets.Values)
            {
                if (t.Rest) continue;
                float v = byValue ? t.Value : t.Goal;
                if (v > bestV) { best = t; bestV = v; }
            }
            if (best == null) return null;
            if (current != null && current != best)
            {
                float cv = byValue ? current.Value : current.Goal;
                if (cv > 0f && bestV - cv < Finite(DominantMargin, 0f)) return current;
            }
            return best;
        }

        void Write(string name, Target t)
        {
            if (sink == null) return;
            try
            {
                if (t.Index == -2) { t.Index = Resolve(name); Describe(name, t); }
                if (t.Index < 0) return;
                float v = t.Value;
                if (t.Binary)
                {
                    // The SDK rounds a binary expression's weight (UniVRM: Mathf.Round, so 0.24 shows as 0):
                    // decide on or off here, with hysteresis, and write exactly 0 or 1.
                    float on = Finite(BinaryThreshold, 0.1f);
                    if (on < 1e-4f) on = 1e-4f;
                    bool leads = t == binaryLeader || t.Rest;
                    t.BinaryOn = leads && (t.BinaryOn ? v >= on * 0.5f : v >= on);
                    v = t.BinaryOn ? 1f : 0f;
                }
                float w = Scale(v);
                if (!WriteEveryFrame && !float.IsNaN(t.LastWritten) && Math.Abs(w - t.LastWritten) < 1e-4f) return;
                sink.SetWeight(t.Index, w);
                t.LastWritten = w;
            }
            catch (Exception e)
            {
                t.Index = -1; // stop touching this one
                Report("error:" + name, Error, "blendshape '" + name + "': " + e.GetType().Name + ": " + e.Message);
            }
        }

        void Describe(string name, Target t)
        {
            var info = sink as IExpressionInfo;
            if (info == null || t.Index < 0) return;
            t.Binary = info.IsBinary(t.Index);
            string note = info.Note(t.Index);
            if (note != null) Report("note:" + name, Notice, note);
        }

        int Resolve(string name)
        {
            int i = sink.GetIndex(name);
            if (i >= 0) return i;
            int found = -1;
            for (int k = 0; k < sink.Count; k++)
            {
                if (string.Equals(sink.GetName(k), name, StringComparison.OrdinalIgnoreCase))
                {
                    if (found >= 0) { found = -1; break; } // ambiguous: do not guess
                    found = k;
                }
            }
            if (found >= 0) return found;
            Report("missing:" + name, MissingName, name);
            return -1;
        }

        void Report(string key, Action<string> callback, string what)
        {
            if (!reported.Add(key) || callback == null) return;
            try { callback(what); } catch (Exception) { }
        }
    }
}
