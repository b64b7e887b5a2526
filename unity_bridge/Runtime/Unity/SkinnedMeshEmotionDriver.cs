// Drives a SkinnedMeshRenderer's blendshapes from ser-daemon's state, by blendshape name.
using System;
using System.Collections.Generic;
using UnityEngine;

namespace SerDaemon.Bridge
{
    /// <summary>
    /// Maps one value set of the receiver's state (class probabilities, or the daemon's VRM / VRM 0.x /
    /// ARKit / VMC weights) onto blendshapes by name: through the bindings list (source name to
    /// blendshape name, with a gain), and, with passThroughUnbound, sources with no binding onto the
    /// blendshape of the same name. Weights are smoothed here too and scaled from 0..1 to 0..weightScale
    /// (Unity blendshapes run 0..100). A name the mesh lacks is warned about once and then skipped.
    ///
    /// Execution order: LateUpdate at DefaultExecutionOrder(12000), i.e. after the Animator, after
    /// scripts at the default order 0 and after UniVRM's Vrm10Instance (11000), so with writeEveryFrame on
    /// (the default) its weights are the ones rendered even when those rewrite the same blendshapes each
    /// frame. On a VRM avatar prefer the VRM drivers (Runtime/Vrm10, Runtime/Vrm0): they go through
    /// UniVRM's expression API instead of fighting it. OnDisable puts the driven blendshapes back to 0.
    /// </summary>
    [AddComponentMenu("SER Daemon/Skinned Mesh Emotion Driver")]
    [DefaultExecutionOrder(ExecutionOrder)]
    public sealed class SkinnedMeshEmotionDriver : MonoBehaviour
    {
        public enum ValueSet { Probabilities, Vrm, Vrm0, Arkit, Vmc, Weights }

        /// <summary>After UniVRM's Vrm10Instance (11000) and everything at the default order.</summary>
        public const int ExecutionOrder = 12000;

        [Tooltip("Where the values come from (found in the scene when left empty).")]
        public SerDaemonReceiver receiver;
        [Tooltip("Which daemon stream (speaker) this face follows: \"first\", or a stream id such as \"mic\" or a file stem. One speaker per face.")]
        public string stream = StreamStates.First;
        [Tooltip("The face mesh (this GameObject's when left empty).")]
        public SkinnedMeshRenderer targetRenderer;

        [Tooltip("Probabilities: emotion labels (happy, angry, ...). Vrm/Vrm0/Arkit: the daemon's mapped weights. Vmc: /VMC/Ext/Blend/Val values.")]
        public ValueSet source = ValueSet.Probabilities;
        [Tooltip("Source name (label or expression) to blendshape name, with a gain. Several bindings may share a blendshape; their sum is clamped to 0..1.")]
        public List<BlendshapeBinding> bindings = new List<BlendshapeBinding>();
        [Tooltip("Drive the blendshape named like the source when a source has no binding (handy for ARKit or VMC names that match the mesh).")]
        public bool passThroughUnbound = false;

        [Range(0f, 2f)]
        [Tooltip("Time constant of the exponential smoothing, seconds (0 = none). A step reaches 63% after this long.")]
        public float smoothingSeconds = 0.15f;
        [Range(0f, 100f)]
        [Tooltip("Weight for a value of 1 (Unity blendshapes run 0..100).")]
        public float weightScale = 100f;
        [Tooltip("Relax the face to 0 when nothing came from the stream for the receiver's staleAfterSeconds.")]
        public bool relaxWhenStale = true;
        [Tooltip("Write every driven blendshape every frame, not only on change: keeps the expression when an Animator, UniVRM or another script writes the same blendshapes each frame.")]
        public bool writeEveryFrame = true;

        [Tooltip("Deadzone (rest is exactly 0), gain, normalisation, dominant-only, IsBinary threshold: see the README, Faces on real avatars.")]
        public FaceShaping shaping = new FaceShaping();

        readonly BlendshapeMapper mapper = new BlendshapeMapper();
        RendererSink sink;
        Mesh boundMesh;
        float nextReceiverLookup;

        /// <summary>The mapper (for scripts that want the current weights).</summary>
        public BlendshapeMapper Mapper { get { return mapper; } }

        static string SetName(ValueSet v)
        {
            switch (v)
            {
                case ValueSet.Vrm: return EmotionState.SetVrm;
                case ValueSet.Vrm0: return EmotionState.SetVrm0;
                case ValueSet.Arkit: return EmotionState.SetArkit;
                case ValueSet.Vmc: return EmotionState.SetVmc;
                case ValueSet.Weights: return EmotionState.SetWeights;
                default: return EmotionState.SetProbs;
            }
        }

        void OnEnable()
        {
            if (targetRenderer == null) targetRenderer = GetComponent<SkinnedMeshRenderer>();
            if (receiver == null) receiver = SerDaemonScene.FindReceiver();
            if (targetRenderer == null) Debug.LogWarning("SkinnedMeshEmotionDriver: no SkinnedMeshRenderer set", this);
            if (receiver == null) Debug.LogWarning("SkinnedMeshEmotionDriver: no SerDaemonReceiver in the scene", this);
            mapper.MissingName = OnMissing;
            mapper.Error = OnError;
            Rebind();
        }

        void OnDisable()
        {
            mapper.Reset(); // no expression left behind on a disabled driver
        }

        void OnValidate()
        {
            if (Application.isPlaying && isActiveAndEnabled) Rebind(); // bindings edited in the Inspector
        }

        /// <summary>Resolve blendshape names again (after changing the mesh or the bindings at run time).</summary>
        [ContextMenu("Rebind blendshapes")]
        public void Rebind()
        {
            sink = targetRenderer != null ? new RendererSink(targetRenderer) : null;
            boundMesh = targetRenderer != null ? targetRenderer.sharedMesh : null;
            mapper.Bindings.Clear();
            if (bindings != null) mapper.Bindings.AddRange(bindings);
            mapper.Sink = sink;
        }

        [ContextMenu("Fill bindings: labels to VRM 0.x clip names (Joy, Angry, ...)")]
        void FillVrm0Bindings() { bindings = DefaultBindings.FromLabels(""); source = ValueSet.Probabilities; Rebind(); }

        [ContextMenu("Fill bindings: labels to VRoid face blendshapes (Fcl_ALL_Joy, ...)")]
        void FillVRoidBindings() { bindings = DefaultBindings.FromLabels("Fcl_ALL_"); source = ValueSet.Probabilities; Rebind(); }

        void LateUpdate()
        {
            receiver = SerDaemonScene.Reacquire(receiver, ref nextReceiverLookup); // a scene change destroyed it
            if (targetRenderer == null && sink != null) { targetRenderer = GetComponent<SkinnedMeshRenderer>(); Rebind(); } // replaced
            if (targetRenderer != null && targetRenderer.sharedMesh != boundMesh) Rebind();
            if (bindings != null && bindings.Count != mapper.Bindings.Count) Rebind();
            mapper.PassThrough = passThroughUnbound;
            mapper.SmoothingSeconds = smoothingSeconds;
            mapper.WeightScale = weightScale;
            mapper.WriteEveryFrame = writeEveryFrame;
            if (shaping != null) shaping.ApplyTo(mapper);
            mapper.SetSources(SerDaemonScene.TargetValues(receiver, stream, SetName(source), relaxWhenStale));
            // Unscaled: a paused game (timeScale 0) or slow motion must not freeze or slow the face.
            mapper.Update(Time.unscaledDeltaTime);
        }

        void OnMissing(string name)
        {
            Debug.LogWarning("SkinnedMeshEmotionDriver: blendshape '" + name + "' not found on " +
                             (targetRenderer != null ? targetRenderer.name : "(no renderer)") + "; it is skipped", this);
        }

        void OnError(string what)
        {
            Debug.LogWarning("SkinnedMeshEmotionDriver: " + what, this);
        }

        sealed class RendererSink : IBlendshapeSink
        {
            readonly SkinnedMeshRenderer r;
            public RendererSink(SkinnedMeshRenderer renderer) { r = renderer; }
            Mesh M { get { return r != null ? r.sharedMesh : null; } }
            public int GetIndex(string name) { var m = M; return m != null ? m.GetBlendShapeIndex(name) : -1; }
            public int Count { get { var m = M; return m != null ? m.blendShapeCount : 0; } }
            public string GetName(int index) { var m = M; return m != null ? m.GetBlendShapeName(index) : null; }
            public void SetWeight(int index, float weight) { if (r != null) r.SetBlendShapeWeight(index, weight); }
        }
    }
}
