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
//
// The 1.0 side has the shape of UniVRM v0.131's expression pipeline: Vrm10Instance.Vrm (VRM10Object)
// .Expression (VRM10ObjectExpression: preset fields, CustomClips, Clips as (Preset, Clip) tuples,
// CreateKey), VRM10Expression (IsBinary, OverrideBlink/LookAt/Mouth), ExpressionKey (Preset, IsBlink,
// IsLookAt, IsMouth, Comparer), and Vrm10RuntimeExpression.Process running an IExpressionValidator
// (input weights -> actual weights) before writing the bound blendshapes. With
// -define:SERDAEMON_REAL_UNIVRM_VALIDATOR the test compiles UniVRM's own DefaultExpressionValidator.cs
// (fetched into a directory given by SER_UNIVRM_SRC; UniVRM's code is not part of this repository);
// without it, StandInExpressionValidator below implements the same published rules: an IsBinary
// expression's weight is Mathf.Round(weight); each expression that is not itself blink/lookAt/mouth adds
// to the blink/lookAt/mouth override rate 1 if its override is "block" and its weight > 0, its weight
// if "blend"; rates are clamped to 0..1 and blink/lookAt/mouth weights multiplied by 1 - rate.
using System;
using System.Collections.Generic;
using UnityEngine;

namespace UniGLTF.Extensions.VRMC_vrm
{
    public enum ExpressionPreset { custom, happy, angry, sad, relaxed, surprised, aa, ih, ou, ee, oh, blink, blinkLeft, blinkRight, lookUp, lookDown, lookLeft, lookRight, neutral }
    public enum ExpressionOverrideType { none, block, blend }
}

namespace VrmLib
{
    static class StandInNamespaceMarker { } // UniVRM's validator has "using VrmLib;"
}

namespace UniVRM10
{
    using UniGLTF.Extensions.VRMC_vrm;

    public struct ExpressionKey : IEquatable<ExpressionKey> // "readonly struct" in UniVRM; mcs (C# 7.0) lacks the modifier, the API is the same
    {
        public readonly ExpressionPreset Preset;
        public readonly string Name;

        public ExpressionKey(ExpressionPreset preset, string customName = null)
        {
            Preset = preset;
            if (preset != ExpressionPreset.custom) Name = preset.ToString();
            else if (string.IsNullOrEmpty(customName)) throw new ArgumentException("name is required for ExpressionPreset.Custom");
            else Name = customName;
        }

        public bool IsBlink { get { return Preset == ExpressionPreset.blink || Preset == ExpressionPreset.blinkLeft || Preset == ExpressionPreset.blinkRight; } }
        public bool IsLookAt { get { return Preset == ExpressionPreset.lookUp || Preset == ExpressionPreset.lookDown || Preset == ExpressionPreset.lookLeft || Preset == ExpressionPreset.lookRight; } }
        public bool IsMouth { get { return Preset == ExpressionPreset.aa || Preset == ExpressionPreset.ih || Preset == ExpressionPreset.ou || Preset == ExpressionPreset.ee || Preset == ExpressionPreset.oh; } }

        public static ExpressionKey CreateCustom(string key) { return new ExpressionKey(ExpressionPreset.custom, key); }
        public static ExpressionKey CreateFromPreset(ExpressionPreset preset) { return new ExpressionKey(preset); }
        public static ExpressionKey Happy { get { return CreateFromPreset(ExpressionPreset.happy); } }
        public static ExpressionKey Angry { get { return CreateFromPreset(ExpressionPreset.angry); } }
        public static ExpressionKey Sad { get { return CreateFromPreset(ExpressionPreset.sad); } }
        public static ExpressionKey Relaxed { get { return CreateFromPreset(ExpressionPreset.relaxed); } }
        public static ExpressionKey Surprised { get { return CreateFromPreset(ExpressionPreset.surprised); } }
        public static ExpressionKey Neutral { get { return CreateFromPreset(ExpressionPreset.neutral); } }
        public static ExpressionKey Blink { get { return CreateFromPreset(ExpressionPreset.blink); } }
        public static ExpressionKey Aa { get { return CreateFromPreset(ExpressionPreset.aa); } }

        public bool Equals(ExpressionKey other) { return Preset == other.Preset && (Preset != ExpressionPreset.custom || Name == other.Name); }
        public override bool Equals(object obj) { return obj is ExpressionKey && Equals((ExpressionKey)obj); }
        public override int GetHashCode() { return Preset == ExpressionPreset.custom ? ("Unknown_" + Name).GetHashCode() : Name.GetHashCode(); }
        public override string ToString() { return Name; }

        static readonly IEqualityComparer<ExpressionKey> comparer = EqualityComparer<ExpressionKey>.Default;
        public static IEqualityComparer<ExpressionKey> Comparer { get { return comparer; } }
    }

    public struct LookAtEyeDirection
    {
        public float Yaw, Pitch;
        public static LookAtEyeDirection Multiply(LookAtEyeDirection a, float b) { return new LookAtEyeDirection { Yaw = a.Yaw * b, Pitch = a.Pitch * b }; }
    }

    public class VRM10Expression : ScriptableObject
    {
        public bool IsBinary;
        public ExpressionOverrideType OverrideBlink = ExpressionOverrideType.none;
        public ExpressionOverrideType OverrideLookAt = ExpressionOverrideType.none;
        public ExpressionOverrideType OverrideMouth = ExpressionOverrideType.none;
    }

    [Serializable]
    public sealed class VRM10ObjectExpression
    {
        public VRM10Expression Happy, Angry, Sad, Relaxed, Surprised, Aa, Ih, Ou, Ee, Oh, Blink, BlinkLeft, BlinkRight, LookUp, LookDown, LookLeft, LookRight, Neutral;
        public List<VRM10Expression> CustomClips = new List<VRM10Expression>();

        public IEnumerable<(ExpressionPreset Preset, VRM10Expression Clip)> Clips
        {
            get
            {
                var presets = new[] { Happy, Angry, Sad, Relaxed, Surprised, Aa, Ih, Ou, Ee, Oh, Blink, BlinkLeft, BlinkRight, LookUp, LookDown, LookLeft, LookRight, Neutral };
                var names = new[] { ExpressionPreset.happy, ExpressionPreset.angry, ExpressionPreset.sad, ExpressionPreset.relaxed, ExpressionPreset.surprised,
                    ExpressionPreset.aa, ExpressionPreset.ih, ExpressionPreset.ou, ExpressionPreset.ee, ExpressionPreset.oh, ExpressionPreset.blink,
                    ExpressionPreset.blinkLeft, ExpressionPreset.blinkRight, ExpressionPreset.lookUp, ExpressionPreset.lookDown, ExpressionPreset.lookLeft,
                    ExpressionPreset.lookRight, ExpressionPreset.neutral };
                for (int i = 0; i < presets.Length; i++) if (presets[i] != null) yield return (names[i], presets[i]);
                foreach (var c in CustomClips) if (c != null) yield return (ExpressionPreset.custom, c);
            }
        }

        public ExpressionKey CreateKey(VRM10Expression clip)
        {
            foreach (var c in Clips) if (c.Clip == clip) return new ExpressionKey(c.Preset, clip.name);
            throw new KeyNotFoundException();
        }

        public void AddClip(ExpressionPreset preset, VRM10Expression clip)
        {
            switch (preset)
            {
                case ExpressionPreset.happy: Happy = clip; break;
                case ExpressionPreset.angry: Angry = clip; break;
                case ExpressionPreset.sad: Sad = clip; break;
                case ExpressionPreset.relaxed: Relaxed = clip; break;
                case ExpressionPreset.surprised: Surprised = clip; break;
                case ExpressionPreset.aa: Aa = clip; break;
                case ExpressionPreset.blink: Blink = clip; break;
                case ExpressionPreset.neutral: Neutral = clip; break;
                case ExpressionPreset.custom: CustomClips.Add(clip); break;
                default: throw new NotSupportedException("stand-in: " + preset);
            }
        }
    }

    public class VRM10Object : ScriptableObject
    {
        public VRM10ObjectExpression Expression = new VRM10ObjectExpression();
    }

    public interface IExpressionValidator
    {
        void Validate(IReadOnlyDictionary<ExpressionKey, float> inputWeights, IDictionary<ExpressionKey, float> actualWeights,
            LookAtEyeDirection inputEyeDirection, out LookAtEyeDirection actualEyeDirection,
            out float blinkOverrideRate, out float lookAtOverrideRate, out float mouthOverrideRate);
    }

    public interface IExpressionValidatorFactory
    {
        IExpressionValidator Create(VRM10ObjectExpression expressionAvatar);
    }

#if !SERDAEMON_REAL_UNIVRM_VALIDATOR
    /// <summary>Stand-in, written from UniVRM's published rules (see the header); the real one replaces it with SERDAEMON_REAL_UNIVRM_VALIDATOR.</summary>
    public sealed class StandInExpressionValidator : IExpressionValidator
    {
        readonly List<KeyValuePair<ExpressionKey, VRM10Expression>> clips = new List<KeyValuePair<ExpressionKey, VRM10Expression>>();

        StandInExpressionValidator(VRM10ObjectExpression e)
        {
            foreach (var c in e.Clips) clips.Add(new KeyValuePair<ExpressionKey, VRM10Expression>(e.CreateKey(c.Clip), c.Clip));
        }

        static float Rate(ExpressionOverrideType t, float w) { return t == ExpressionOverrideType.block ? (w > 0f ? 1f : 0f) : t == ExpressionOverrideType.blend ? w : 0f; }

        public void Validate(IReadOnlyDictionary<ExpressionKey, float> input, IDictionary<ExpressionKey, float> actual,
            LookAtEyeDirection inputEye, out LookAtEyeDirection actualEye, out float blink, out float lookAt, out float mouth)
        {
            blink = lookAt = mouth = 0f;
            foreach (var kv in clips)
            {
                float w = kv.Value.IsBinary ? Mathf.Round(input[kv.Key]) : input[kv.Key];
                actual[kv.Key] = w;
                if (!kv.Key.IsBlink) blink += Rate(kv.Value.OverrideBlink, w);
                if (!kv.Key.IsLookAt) lookAt += Rate(kv.Value.OverrideLookAt, w);
                if (!kv.Key.IsMouth) mouth += Rate(kv.Value.OverrideMouth, w);
            }
            blink = Mathf.Clamp01(blink); lookAt = Mathf.Clamp01(lookAt); mouth = Mathf.Clamp01(mouth);
            foreach (var kv in clips)
            {
                if (kv.Key.IsBlink) actual[kv.Key] *= 1f - blink;
                else if (kv.Key.IsLookAt) actual[kv.Key] *= 1f - lookAt;
                else if (kv.Key.IsMouth) actual[kv.Key] *= 1f - mouth;
            }
            actualEye = LookAtEyeDirection.Multiply(inputEye, 1f - lookAt);
        }

        public sealed class Factory : IExpressionValidatorFactory
        {
            public IExpressionValidator Create(VRM10ObjectExpression e) { return new StandInExpressionValidator(e); }
        }
    }
#endif

    public sealed class Vrm10RuntimeExpression
    {
#if SERDAEMON_REAL_UNIVRM_VALIDATOR
        public static IExpressionValidatorFactory ExpressionValidatorFactory = new DefaultExpressionValidator.Factory();
#else
        public static IExpressionValidatorFactory ExpressionValidatorFactory = new StandInExpressionValidator.Factory();
#endif
        readonly List<ExpressionKey> keys = new List<ExpressionKey>();
        readonly Dictionary<ExpressionKey, float> input = new Dictionary<ExpressionKey, float>();
        readonly Dictionary<ExpressionKey, float> actual = new Dictionary<ExpressionKey, float>();
        readonly IExpressionValidator validator;
        // Stand-in only: which mesh blendshape each expression drives (weight 1 = 100).
        internal readonly Dictionary<ExpressionKey, int> StubBinds;
        internal SkinnedMeshRenderer StubMesh;
        public int StubSetWeightCalls;

        internal Vrm10RuntimeExpression(VRM10ObjectExpression expression, Dictionary<ExpressionKey, int> binds, SkinnedMeshRenderer mesh)
        {
            foreach (var c in expression.Clips) { var k = expression.CreateKey(c.Clip); keys.Add(k); input[k] = 0f; actual[k] = 0f; }
            validator = ExpressionValidatorFactory.Create(expression);
            StubBinds = binds;
            StubMesh = mesh;
        }

        public IReadOnlyList<ExpressionKey> ExpressionKeys { get { return keys; } }
        public IReadOnlyDictionary<ExpressionKey, float> ActualWeights { get { return actual; } }
        public float BlinkOverrideRate { get; private set; }
        public float LookAtOverrideRate { get; private set; }
        public float MouthOverrideRate { get; private set; }

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

        /// <summary>As UniVRM's Process: validate the input weights, then rewrite every bound blendshape from the actual ones.</summary>
        internal void Process()
        {
            LookAtEyeDirection eye;
            float blink, lookAt, mouth;
            validator.Validate(input, actual, default(LookAtEyeDirection), out eye, out blink, out lookAt, out mouth);
            BlinkOverrideRate = blink; LookAtOverrideRate = lookAt; MouthOverrideRate = mouth;
            if (StubMesh == null) return;
            foreach (var kv in StubBinds) StubMesh.SetBlendShapeWeight(kv.Value, Mathf.Clamp01(actual[kv.Key]) * 100f);
        }
    }

    public enum ControlRigGenerationOption { None, Generate }

    /// <summary>
    /// UniVRM's loader entry point (v0.11x-0.13x: LoadPathAsync(path, canLoadVrm0X, controlRigGenerationOption or
    /// normalizeTransform, showMeshes, awaitCaller, ..., ct); the sample passes only path and canLoadVrm0X by name,
    /// which fits every one of them). Stand-in "file": one expression preset name per line; it builds a
    /// GameObject with a face mesh and a Vrm10Instance whose expressions drive the blendshapes of those names.
    /// </summary>
    public static class Vrm10
    {
        public static System.Threading.Tasks.Task<Vrm10Instance> LoadPathAsync(string path, bool canLoadVrm0X = true,
            ControlRigGenerationOption controlRigGenerationOption = ControlRigGenerationOption.Generate, bool showMeshes = true,
            System.Threading.CancellationToken ct = default(System.Threading.CancellationToken))
        {
            var lines = System.IO.File.ReadAllLines(path); // throws for a missing file, as UniVRM's File.ReadAllBytes does
            var go = new GameObject(System.IO.Path.GetFileNameWithoutExtension(path));
            var mesh = new Mesh { name = go.name + " face" };
            foreach (var l in lines) if (l.Trim().Length > 0) mesh.StubAddBlendShape(l.Trim());
            var face = go.AddComponent<SkinnedMeshRenderer>();
            face.sharedMesh = mesh;
            var vrm = go.AddComponent<Vrm10Instance>();
            int i = 0;
            foreach (var l in lines)
            {
                if (l.Trim().Length == 0) continue;
                var preset = (ExpressionPreset)Enum.Parse(typeof(ExpressionPreset), l.Trim());
                vrm.StubBind(face, ExpressionKey.CreateFromPreset(preset), i++);
            }
            return System.Threading.Tasks.Task.FromResult(vrm);
        }
    }

    public sealed class Vrm10Runtime
    {
        public Vrm10RuntimeExpression Expression { get; private set; }
        internal Vrm10Runtime(Vrm10RuntimeExpression expression) { Expression = expression; }
    }

    [DisallowMultipleComponent]
    [DefaultExecutionOrder(11000)]
    public class Vrm10Instance : MonoBehaviour
    {
        public VRM10Object Vrm;
        Vrm10Runtime runtime;
        readonly Dictionary<ExpressionKey, int> stubBinds = new Dictionary<ExpressionKey, int>();
        SkinnedMeshRenderer stubMesh;

        public Vrm10Runtime Runtime
        {
            get
            {
                if (runtime == null && Vrm != null) runtime = new Vrm10Runtime(new Vrm10RuntimeExpression(Vrm.Expression, stubBinds, stubMesh));
                return runtime;
            }
        }

        /// <summary>Stand-in: add an expression (a VRM10Expression clip) bound to a blendshape of this mesh; returns the clip for its settings.</summary>
        public VRM10Expression StubBind(SkinnedMeshRenderer mesh, ExpressionKey key, int blendshape)
        {
            if (Vrm == null) Vrm = new VRM10Object();
            var clip = new VRM10Expression { name = key.Name };
            Vrm.Expression.AddClip(key.Preset, clip);
            stubMesh = mesh;
            stubBinds[key] = blendshape;
            runtime = null; // as loading the model again: a new runtime
            return clip;
        }

        void LateUpdate() { if (Runtime != null) Runtime.Expression.Process(); }
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

        static readonly Dictionary<BlendShapePreset, string> presetNames = new Dictionary<BlendShapePreset, string>();
        // UniVRM caches the preset's name too (Enum.ToString allocates).
        public static BlendShapeKey CreateFromPreset(BlendShapePreset preset)
        {
            string n;
            if (!presetNames.TryGetValue(preset, out n)) { n = preset.ToString(); presetNames[preset] = n; }
            return new BlendShapeKey(n, preset);
        }
        public static BlendShapeKey CreateUnknown(string name) { return new BlendShapeKey(name, BlendShapePreset.Unknown); }

        public bool Equals(BlendShapeKey other) { return Preset == other.Preset && (Preset != BlendShapePreset.Unknown || Name == other.Name); }
        public override bool Equals(object obj) { return obj is BlendShapeKey && Equals((BlendShapeKey)obj); }
        public override int GetHashCode() { return Preset == BlendShapePreset.Unknown ? (Name ?? "").GetHashCode() : (int)Preset; }
        public override string ToString() { return Name; }
    }

    public class BlendShapeClip : ScriptableObject
    {
        public string BlendShapeName = "";
        public BlendShapePreset Preset;
        public bool IsBinary;
        public BlendShapeKey Key { get { return Preset == BlendShapePreset.Unknown ? BlendShapeKey.CreateUnknown(BlendShapeName) : BlendShapeKey.CreateFromPreset(Preset); } }
    }

    public class BlendShapeAvatar : ScriptableObject
    {
        public List<BlendShapeClip> Clips = new List<BlendShapeClip>();

        public BlendShapeClip GetClip(BlendShapeKey key)
        {
            if (Clips == null) return null;
            foreach (var c in Clips) if (c != null && c.Key.Equals(key)) return c;
            return null;
        }
    }

    [DisallowMultipleComponent]
    public class VRMBlendShapeProxy : MonoBehaviour
    {
        public BlendShapeAvatar BlendShapeAvatar;
        readonly Dictionary<BlendShapeKey, float> accumulated = new Dictionary<BlendShapeKey, float>();
        readonly Dictionary<BlendShapeKey, float> values = new Dictionary<BlendShapeKey, float>();
        internal readonly Dictionary<BlendShapeKey, int> StubBinds = new Dictionary<BlendShapeKey, int>();
        internal SkinnedMeshRenderer StubMesh;
        public int StubApplyCalls;

        /// <summary>Stand-in: add a clip to the avatar, bound to a blendshape of this mesh; returns the clip for its settings.</summary>
        public BlendShapeClip StubBind(SkinnedMeshRenderer mesh, BlendShapeKey key, int blendshape)
        {
            if (BlendShapeAvatar == null) BlendShapeAvatar = new BlendShapeAvatar();
            var clip = new BlendShapeClip { BlendShapeName = key.Name, Preset = key.Preset, name = key.Name };
            BlendShapeAvatar.Clips.Add(clip);
            StubMesh = mesh;
            StubBinds[key] = blendshape;
            return clip;
        }

        readonly Dictionary<BlendShapeKey, BlendShapeClip> clipMap = new Dictionary<BlendShapeKey, BlendShapeClip>();
        BlendShapeAvatar mapped;
        int mappedCount = -1;

        /// <summary>As UniVRM's merger: clips the avatar lacks are ignored (a map of the avatar's clips); an IsBinary clip's value is rounded.</summary>
        public void AccumulateValue(BlendShapeKey key, float value)
        {
            if (!ReferenceEquals(mapped, BlendShapeAvatar) || (BlendShapeAvatar != null && BlendShapeAvatar.Clips.Count != mappedCount))
            {
                clipMap.Clear();
                mapped = BlendShapeAvatar;
                mappedCount = BlendShapeAvatar != null ? BlendShapeAvatar.Clips.Count : -1;
                if (BlendShapeAvatar != null) foreach (var c in BlendShapeAvatar.Clips) clipMap[c.Key] = c;
            }
            BlendShapeClip clip;
            clipMap.TryGetValue(key, out clip);
            if (clip == null) return;
            if (clip.IsBinary) value = Mathf.Round(value);
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
