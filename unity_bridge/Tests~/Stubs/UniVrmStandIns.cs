// Minimal stand-ins for the UniVRM types the optional VRM drivers call, so CI compiles and drives
// Runtime/Vrm10 and Runtime/Vrm0 with Mono's mcs outside Unity. Not shipped (the folder ends in "~").
//
// Signatures copied from UniVRM's public API (github.com/vrm-c/UniVRM; VRM-1.0 package com.vrmc.vrm
// around v0.113: Vrm10Instance.Runtime, Vrm10Runtime.Expression, Vrm10RuntimeExpression.ExpressionKeys /
// SetWeight(ExpressionKey, float) / GetWeight, ExpressionKey.Happy.. / CreateCustom, Vrm10Instance's
// DefaultExecutionOrder(11000) and LateUpdate processing; VRM 0.x package com.vrmc.univrm:
// VRMBlendShapeProxy.AccumulateValue(BlendShapeKey, float) / Apply() / GetValue, BlendShapeKey.CreateFromPreset
// / CreateUnknown, BlendShapePreset). The behaviour is a simplification written for the tests: the 1.0
// instance rewrites every blendshape bound to an expression from the input weights each LateUpdate (as
// UniVRM does), the 0.x proxy writes accumulated clip values to its mesh on Apply.
using System;
using System.Collections.Generic;
using UnityEngine;

namespace UniVRM10
{
    public struct ExpressionKey // "readonly struct" in UniVRM; mcs (C# 7.0) lacks the modifier, the API is the same : IEquatable<ExpressionKey>
    {
        public readonly string Name;
        readonly bool custom;

        ExpressionKey(string name, bool custom) { Name = name; this.custom = custom; }

        public static ExpressionKey CreateCustom(string key) { return new ExpressionKey(key, true); }
        public static ExpressionKey Happy { get { return new ExpressionKey("happy", false); } }
        public static ExpressionKey Angry { get { return new ExpressionKey("angry", false); } }
        public static ExpressionKey Sad { get { return new ExpressionKey("sad", false); } }
        public static ExpressionKey Relaxed { get { return new ExpressionKey("relaxed", false); } }
        public static ExpressionKey Surprised { get { return new ExpressionKey("surprised", false); } }
        public static ExpressionKey Neutral { get { return new ExpressionKey("neutral", false); } }
        public static ExpressionKey Blink { get { return new ExpressionKey("blink", false); } }

        public bool Equals(ExpressionKey other) { return custom == other.custom && Name == other.Name; }
        public override bool Equals(object obj) { return obj is ExpressionKey && Equals((ExpressionKey)obj); }
        public override int GetHashCode() { return (Name ?? "").GetHashCode() ^ (custom ? 1 : 0); }
        public override string ToString() { return Name; }
    }

    public sealed class Vrm10RuntimeExpression
    {
        readonly List<ExpressionKey> keys = new List<ExpressionKey>();
        readonly Dictionary<ExpressionKey, float> input = new Dictionary<ExpressionKey, float>();
        // Stand-in only: which mesh blendshape each expression drives (weight 1 = 100).
        internal readonly Dictionary<ExpressionKey, int> StubBinds = new Dictionary<ExpressionKey, int>();
        internal SkinnedMeshRenderer StubMesh;
        public int StubSetWeightCalls;

        public IReadOnlyList<ExpressionKey> ExpressionKeys { get { return keys; } }

        public void StubAdd(ExpressionKey key, int blendshape) { keys.Add(key); input[key] = 0f; StubBinds[key] = blendshape; }

        public float GetWeight(ExpressionKey expressionKey)
        {
            float v;
            return input.TryGetValue(expressionKey, out v) ? v : 0f;
        }

        public void SetWeight(ExpressionKey expressionKey, float weight)
        {
            StubSetWeightCalls++;
            if (input.ContainsKey(expressionKey)) input[expressionKey] = weight;
        }

        /// <summary>As UniVRM's Process: every bound blendshape is rewritten from the input weights.</summary>
        internal void Process()
        {
            if (StubMesh == null) return;
            foreach (var kv in StubBinds) StubMesh.SetBlendShapeWeight(kv.Value, Mathf.Clamp01(GetWeight(kv.Key)) * 100f);
        }
    }

    public sealed class Vrm10Runtime
    {
        public Vrm10RuntimeExpression Expression { get; private set; }
        internal Vrm10Runtime() { Expression = new Vrm10RuntimeExpression(); }
    }

    [DisallowMultipleComponent]
    [DefaultExecutionOrder(11000)]
    public class Vrm10Instance : MonoBehaviour
    {
        Vrm10Runtime runtime;
        public Vrm10Runtime Runtime { get { return runtime ?? (runtime = new Vrm10Runtime()); } }

        /// <summary>Stand-in: bind an expression to a blendshape of this mesh.</summary>
        public void StubBind(SkinnedMeshRenderer mesh, ExpressionKey key, int blendshape)
        {
            Runtime.Expression.StubMesh = mesh;
            Runtime.Expression.StubAdd(key, blendshape);
        }

        void LateUpdate() { Runtime.Expression.Process(); }
    }
}

namespace VRM
{
    public enum BlendShapePreset { Unknown, Neutral, A, I, U, E, O, Blink, Joy, Angry, Sorrow, Fun, LookUp, LookDown, LookLeft, LookRight, Blink_L, Blink_R }

    public struct BlendShapeKey : IEquatable<BlendShapeKey>
    {
        public readonly string Name;
        public readonly BlendShapePreset Preset;

        BlendShapeKey(string name, BlendShapePreset preset) { Name = name; Preset = preset; }

        public static BlendShapeKey CreateFromPreset(BlendShapePreset preset) { return new BlendShapeKey(preset.ToString(), preset); }
        public static BlendShapeKey CreateUnknown(string name) { return new BlendShapeKey(name, BlendShapePreset.Unknown); }

        public bool Equals(BlendShapeKey other) { return Preset == other.Preset && (Preset != BlendShapePreset.Unknown || Name == other.Name); }
        public override bool Equals(object obj) { return obj is BlendShapeKey && Equals((BlendShapeKey)obj); }
        public override int GetHashCode() { return Preset == BlendShapePreset.Unknown ? (Name ?? "").GetHashCode() : (int)Preset; }
        public override string ToString() { return Name; }
    }

    [DisallowMultipleComponent]
    public class VRMBlendShapeProxy : MonoBehaviour
    {
        readonly Dictionary<BlendShapeKey, float> accumulated = new Dictionary<BlendShapeKey, float>();
        readonly Dictionary<BlendShapeKey, float> values = new Dictionary<BlendShapeKey, float>();
        internal readonly Dictionary<BlendShapeKey, int> StubBinds = new Dictionary<BlendShapeKey, int>();
        internal SkinnedMeshRenderer StubMesh;
        public int StubApplyCalls;

        public void StubBind(SkinnedMeshRenderer mesh, BlendShapeKey key, int blendshape) { StubMesh = mesh; StubBinds[key] = blendshape; }

        public void AccumulateValue(BlendShapeKey key, float value)
        {
            float v;
            accumulated.TryGetValue(key, out v);
            accumulated[key] = v + value;
        }

        public float GetValue(BlendShapeKey key)
        {
            float v;
            return values.TryGetValue(key, out v) ? v : 0f;
        }

        public void Apply()
        {
            StubApplyCalls++;
            foreach (var kv in accumulated)
            {
                values[kv.Key] = kv.Value;
                int index;
                if (StubMesh != null && StubBinds.TryGetValue(kv.Key, out index)) StubMesh.SetBlendShapeWeight(index, Mathf.Clamp01(kv.Value) * 100f);
            }
            accumulated.Clear();
        }
    }
}
