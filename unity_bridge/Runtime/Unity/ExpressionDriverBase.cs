// Shared part of the expression drivers that go through an avatar SDK (the optional VRM drivers).
using System;
using System.Collections.Generic;
using UnityEngine;

namespace SerDaemon.Bridge
{
    /// <summary>
    /// Follows one daemon stream and writes one of its value sets (the daemon's "vrm" or "vrm0" weights)
    /// to named expressions through an IBlendshapeSink, every frame, with this package's smoothing.
    /// Subclasses supply the sink (the avatar SDK's expression API) and, if the SDK needs it, a commit step.
    /// Names pass through unchanged (happy drives the expression "happy") unless bindings say otherwise.
    /// Reads the first of its ValueSets that arrives; values named for the other VRM version are
    /// translated (Joy = happy, Sorrow = sad, Fun = relaxed), so either driver works with generic OSC,
    /// VMC and WebSocket. When the followed stream carries none of them, one warning says what it carries.
    /// Rebinds by itself when the avatar component is replaced, destroyed or reloaded (a new runtime), and
    /// finds a receiver again when its receiver is destroyed or disabled (a scene change under a
    /// DontDestroyOnLoad avatar). OnDisable relaxes every driven expression to 0.
    /// </summary>
    public abstract class ExpressionDriverBase : MonoBehaviour
    {
        [Tooltip("Where the values come from (found in the scene when left empty).")]
        public SerDaemonReceiver receiver;
        [Tooltip("Which daemon stream (speaker) this avatar follows: \"first\", or a stream id such as \"mic\" or a file stem.")]
        public string stream = StreamStates.First;
        [Tooltip("Optional: source name to expression name with a gain. Empty: every daemon name drives the expression of the same name.")]
        public List<BlendshapeBinding> bindings = new List<BlendshapeBinding>();
        [Tooltip("With bindings set, still drive same-named expressions for names no binding mentions.")]
        public bool passThroughUnbound = true;
        [Range(0f, 2f)]
        [Tooltip("Time constant of the exponential smoothing, seconds (0 = none), on top of the daemon's own.")]
        public float smoothingSeconds = 0.15f;
        [Range(0f, 1f)]
        [Tooltip("Expression weight for a daemon value of 1 (lower = subtler).")]
        public float intensity = 1f;
        [Tooltip("Relax to neutral when nothing came from the stream for the receiver's staleAfterSeconds.")]
        public bool relaxWhenStale = true;

        [Tooltip("Deadzone (rest is exactly 0), gain, normalisation, dominant-only, IsBinary threshold: see the README, Faces on real avatars.")]
        public FaceShaping shaping = new FaceShaping();

        protected readonly BlendshapeMapper mapper = new BlendshapeMapper();
        IBlendshapeSink sink;
        bool warnedNoSink, warnedNoValues;
        float nextTry, nextReceiverLookup;
        readonly Dictionary<string, float> translated = new Dictionary<string, float>(StringComparer.Ordinal);

        /// <summary>The mapper (current weights, for scripts and tests).</summary>
        public BlendshapeMapper Mapper { get { return mapper; } }

        /// <summary>The value sets this driver reads, best first (the first one present is used).</summary>
        protected abstract string[] ValueSets { get; }

        /// <summary>True when the avatar's expressions are named like VRM 1.0 presets (happy), false for VRM 0.x clips (Joy).</summary>
        protected abstract bool UsesVrm1Names { get; }

        /// <summary>True when the avatar the current sink was made for is gone or replaced (checked every frame; must be cheap).</summary>
        protected abstract bool AvatarChanged();

        /// <summary>The value set the last frame read (null when none arrived).</summary>
        public string ValueSetInUse { get; private set; }

        /// <summary>The SDK's expression API as a sink, or null while the avatar is not ready (retried each frame).</summary>
        protected abstract IBlendshapeSink CreateSink();

        /// <summary>Called after the weights of a frame were written (e.g. VRM 0.x's Apply).</summary>
        protected virtual void Commit() { }

        protected virtual void OnEnable()
        {
            if (receiver == null) receiver = SerDaemonScene.FindReceiver();
            if (receiver == null) Debug.LogWarning(GetType().Name + ": no SerDaemonReceiver in the scene", this);
            mapper.MissingName = n => Debug.LogWarning(GetType().Name + ": expression '" + n + "' not found on " + name + "; it is skipped", this);
            mapper.Error = e => Debug.LogWarning(GetType().Name + ": " + e, this);
            mapper.Notice = n => Debug.LogWarning(GetType().Name + " on " + name + ": " + n, this);
            Rebind();
        }

        protected virtual void OnDisable()
        {
            if (sink == null) return;
            mapper.Reset();
            SafeCommit();
        }

        /// <summary>Look the avatar's expressions up again (after loading another avatar or editing bindings).</summary>
        [ContextMenu("Rebind expressions")]
        public void Rebind()
        {
            mapper.Bindings.Clear();
            if (bindings != null) mapper.Bindings.AddRange(bindings);
            warnedNoValues = false;
            sink = null;
            try { sink = CreateSink(); }
            catch (Exception e)
            {
                if (!warnedNoSink) Debug.LogWarning(GetType().Name + ": avatar not ready: " + e.Message, this);
                warnedNoSink = true;
            }
            mapper.Sink = sink;
        }

        protected virtual void LateUpdate()
        {
            if (bindings != null && bindings.Count != mapper.Bindings.Count) Rebind();
            if (sink != null && AvatarChanged()) Rebind();
            receiver = SerDaemonScene.Reacquire(receiver, ref nextReceiverLookup);
            if (sink == null && Time.unscaledTime >= nextTry)
            {
                nextTry = Time.unscaledTime + 1f; // an avatar still loading: look again once a second, not every frame
                Rebind();
            }
            if (sink == null) return;
            mapper.PassThrough = passThroughUnbound || bindings == null || bindings.Count == 0;
            mapper.SmoothingSeconds = smoothingSeconds;
            mapper.WeightScale = intensity;
            mapper.WriteEveryFrame = true; // SDKs may reset what is not written again this frame
            if (shaping != null) shaping.ApplyTo(mapper);
            mapper.SetSources(ReadValues());
            mapper.Update(Time.unscaledDeltaTime);
            SafeCommit();
        }

        /// <summary>The first of ValueSets present on the followed stream, under this avatar's names; null to relax.</summary>
        Dictionary<string, float> ReadValues()
        {
            var sets = ValueSets;
            ValueSetInUse = null;
            for (int i = 0; i < sets.Length; i++)
            {
                var values = SerDaemonScene.TargetValues(receiver, stream, sets[i], relaxWhenStale);
                if (values == null) continue;
                ValueSetInUse = sets[i];
                if (ExpressionNames.IsVrm0Set(sets[i]) == !UsesVrm1Names) return values;
                ExpressionNames.Translate(values, translated, UsesVrm1Names);
                return translated;
            }
            WarnIfNothingUsable();
            return null;
        }

        /// <summary>Once: the followed stream is live but carries none of the value sets this driver reads.</summary>
        void WarnIfNothingUsable()
        {
            if (warnedNoValues || receiver == null) return;
            var s = receiver.GetState(stream);
            if (s == null || s.NoAudio || receiver.IsStateStale(s)) return;
            bool any = false;
            foreach (var kv in s.Sets) any |= kv.Value.Count > 0; // no allocation on the frames that do not warn
            if (!any) return; // nothing but the label yet
            var present = new List<string>();
            foreach (var kv in s.Sets) if (kv.Value.Count > 0) present.Add(kv.Key);
            warnedNoValues = true;
            Debug.LogWarning(GetType().Name + " on " + name + ": stream '" + (s.Stream.Length > 0 ? s.Stream : stream) + "' carries " +
                string.Join(", ", present.ToArray()) + " but none of " + string.Join(", ", ValueSets) +
                ", which this driver reads: the face stays at rest. Send the daemon's expression weights (its default mapping sends " +
                "vrm and vrm0 over --osc, vrm0 over --osc vmc, all of them over --ws), or use a Skinned Mesh Emotion Driver with Source Probabilities.", this);
        }

        void SafeCommit()
        {
            try { Commit(); }
            catch (Exception e) { Debug.LogException(e, this); enabled = false; }
        }
    }
}
