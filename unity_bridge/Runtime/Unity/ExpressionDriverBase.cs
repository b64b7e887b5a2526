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
    /// OnDisable relaxes every driven expression to 0.
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

        protected readonly BlendshapeMapper mapper = new BlendshapeMapper();
        IBlendshapeSink sink;
        bool warnedNoSink;
        float nextTry;

        /// <summary>The mapper (current weights, for scripts and tests).</summary>
        public BlendshapeMapper Mapper { get { return mapper; } }

        /// <summary>The value set of the receiver's state this driver reads ("vrm", "vrm0").</summary>
        protected abstract string ValueSet { get; }

        /// <summary>A value set to read when ValueSet has not arrived (e.g. VMC's "vmc" for VRM 0.x clips), or null.</summary>
        protected virtual string FallbackValueSet { get { return null; } }

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
            var values = SerDaemonScene.TargetValues(receiver, stream, ValueSet, relaxWhenStale);
            if (values == null && FallbackValueSet != null) values = SerDaemonScene.TargetValues(receiver, stream, FallbackValueSet, relaxWhenStale);
            mapper.SetSources(values);
            mapper.Update(Time.unscaledDeltaTime);
            SafeCommit();
        }

        void SafeCommit()
        {
            try { Commit(); }
            catch (Exception e) { Debug.LogException(e, this); enabled = false; }
        }
    }
}
