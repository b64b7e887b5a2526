// Stand-ins for the UnityEditor and UnityEditor.Animations API the VRChat setup tool (Editor/VRChat) calls,
// with Unity's signatures, so the test suite compiles and runs the tool under Mono and inspects the
// controller it builds. Behaviour is the minimum: assets live in memory, keyed by path.
using System;
using System.Collections.Generic;
using UnityEngine;

namespace UnityEngine
{
    public struct Vector3
    {
        public float x, y, z;
        public Vector3(float x, float y, float z) { this.x = x; this.y = y; this.z = z; }
    }

    public class Motion : Object { }
    public class RuntimeAnimatorController : Object { }
    public class AvatarMask : Object { }
    public class Texture2D : Object { }

    public struct Keyframe
    {
        public float time, value;
        public Keyframe(float time, float value) { this.time = time; this.value = value; }
    }

    public class AnimationCurve
    {
        public Keyframe[] keys;
        public AnimationCurve(params Keyframe[] keys) { this.keys = keys; }
        public static AnimationCurve Constant(float timeStart, float timeEnd, float value) { return new AnimationCurve(new Keyframe(timeStart, value), new Keyframe(timeEnd, value)); }
    }

    public sealed class AnimationClip : Motion
    {
        internal readonly Dictionary<string, AnimationCurve> StubCurves = new Dictionary<string, AnimationCurve>();
        /// <summary>Stand-in: "path|Type|property" -> curve.</summary>
        public IDictionary<string, AnimationCurve> StubCurvesByKey { get { return StubCurves; } }
    }

    public enum AnimatorControllerParameterType { Float = 1, Int = 3, Bool = 4, Trigger = 9 }

    public class AnimatorControllerParameter
    {
        public string name;
        public AnimatorControllerParameterType type;
        public float defaultFloat;
        public int defaultInt;
        public bool defaultBool;
    }
}

namespace UnityEditor
{
    [AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
    public sealed class MenuItem : Attribute
    {
        public MenuItem(string itemName) { }
        public MenuItem(string itemName, bool isValidateFunction) { }
    }

    public static class Selection
    {
        public static GameObject activeGameObject;
    }

    public static class Undo
    {
        public static int StubRecords;
        public static void RecordObject(UnityEngine.Object objectToUndo, string name) { StubRecords++; }
    }

    public static class EditorUtility
    {
        public static void SetDirty(UnityEngine.Object target) { }
    }

    public struct EditorCurveBinding
    {
        public string path, propertyName;
        public Type type;
        public static EditorCurveBinding FloatCurve(string inPath, Type inType, string inPropertyName)
        {
            return new EditorCurveBinding { path = inPath, type = inType, propertyName = inPropertyName };
        }
    }

    public static class AnimationUtility
    {
        public static void SetEditorCurve(AnimationClip clip, EditorCurveBinding binding, AnimationCurve curve)
        {
            clip.StubCurves[binding.path + "|" + binding.type.Name + "|" + binding.propertyName] = curve;
        }
    }

    /// <summary>In memory: path -> main asset + sub-assets; folders as a set.</summary>
    public static class AssetDatabase
    {
        static readonly Dictionary<string, List<UnityEngine.Object>> assets = new Dictionary<string, List<UnityEngine.Object>>();
        static readonly HashSet<string> folders = new HashSet<string> { "Assets" };

        public static void StubReset() { assets.Clear(); folders.Clear(); folders.Add("Assets"); }

        public static bool IsValidFolder(string path) { return folders.Contains(path); }

        public static string CreateFolder(string parentFolder, string newFolderName)
        {
            if (!folders.Contains(parentFolder)) return "";
            folders.Add(parentFolder + "/" + newFolderName);
            return Guid.NewGuid().ToString("N");
        }

        public static string GenerateUniqueAssetPath(string path)
        {
            if (!assets.ContainsKey(path)) return path;
            int dot = path.LastIndexOf('.');
            for (int i = 1; ; i++)
            {
                string p = path.Substring(0, dot) + " " + i + path.Substring(dot);
                if (!assets.ContainsKey(p)) return p;
            }
        }

        public static void CreateAsset(UnityEngine.Object asset, string path)
        {
            int slash = path.LastIndexOf('/');
            if (!folders.Contains(path.Substring(0, slash))) throw new ArgumentException("no folder for " + path);
            assets[path] = new List<UnityEngine.Object> { asset };
        }

        public static void AddObjectToAsset(UnityEngine.Object objectToAdd, UnityEngine.Object assetObject)
        {
            foreach (var kv in assets) if (kv.Value[0] == assetObject) { kv.Value.Add(objectToAdd); return; }
            throw new ArgumentException("not an asset");
        }

        public static string GetAssetPath(UnityEngine.Object assetObject)
        {
            foreach (var kv in assets) if (kv.Value.Contains(assetObject)) return kv.Key;
            return "";
        }

        /// <summary>Stand-in: the main asset of the file that holds this object.</summary>
        public static UnityEngine.Object StubMainAsset(UnityEngine.Object o)
        {
            foreach (var kv in assets) if (kv.Value.Contains(o)) return kv.Value[0];
            return null;
        }

        public static UnityEngine.Object[] LoadAllAssetsAtPath(string assetPath)
        {
            List<UnityEngine.Object> list;
            if (!assets.TryGetValue(assetPath, out list)) return new UnityEngine.Object[0];
            list.RemoveAll(o => o == null); // destroyed sub-assets
            return list.ToArray();
        }

        public static void SaveAssets() { }
    }
}

namespace UnityEditor.Animations
{
    public enum AnimatorConditionMode { If = 1, IfNot = 2, Greater = 3, Less = 4, Equals = 6, NotEqual = 7 }
    public enum BlendTreeType { Simple1D = 0, SimpleDirectional2D = 1, FreeformDirectional2D = 2, FreeformCartesian2D = 3, Direct = 4 }

    public struct AnimatorCondition
    {
        public AnimatorConditionMode mode;
        public string parameter;
        public float threshold;
    }

    public struct ChildMotion
    {
        public Motion motion;
        public float threshold;
    }

    public struct ChildAnimatorState
    {
        public AnimatorState state;
        public Vector3 position;
    }

    public class AnimatorTransitionBase : UnityEngine.Object
    {
        public AnimatorState destinationState;
        readonly List<AnimatorCondition> list = new List<AnimatorCondition>();
        public AnimatorCondition[] conditions { get { return list.ToArray(); } set { list.Clear(); list.AddRange(value); } }
        public void AddCondition(AnimatorConditionMode mode, float threshold, string parameter)
        {
            list.Add(new AnimatorCondition { mode = mode, threshold = threshold, parameter = parameter });
        }
    }

    public sealed class AnimatorStateTransition : AnimatorTransitionBase
    {
        public float duration, exitTime, offset;
        public bool hasExitTime = true, hasFixedDuration = true, canTransitionToSelf = true;
    }

    public sealed class AnimatorState : UnityEngine.Object
    {
        public Motion motion;
        public bool writeDefaultValues = true;
        public AnimatorStateTransition[] transitions = new AnimatorStateTransition[0];
    }

    public sealed class AnimatorStateMachine : UnityEngine.Object
    {
        readonly List<ChildAnimatorState> list = new List<ChildAnimatorState>();
        readonly List<AnimatorStateTransition> any = new List<AnimatorStateTransition>();
        public AnimatorState defaultState;
        public ChildAnimatorState[] states { get { return list.ToArray(); } }
        public AnimatorStateTransition[] anyStateTransitions { get { return any.ToArray(); } }

        // As Unity: states and transitions made on a state machine stored in an asset become sub-assets of it.
        void Persist(UnityEngine.Object o)
        {
            if (AssetDatabase.GetAssetPath(this) != "") AssetDatabase.AddObjectToAsset(o, AssetDatabase.StubMainAsset(this));
        }

        public AnimatorState AddState(string name, Vector3 position)
        {
            var s = new AnimatorState { name = name };
            list.Add(new ChildAnimatorState { state = s, position = position });
            if (defaultState == null) defaultState = s;
            Persist(s);
            return s;
        }

        public AnimatorStateTransition AddAnyStateTransition(AnimatorState destinationState)
        {
            var t = new AnimatorStateTransition { destinationState = destinationState };
            any.Add(t);
            Persist(t);
            return t;
        }
    }

    public sealed class AnimatorControllerLayer
    {
        public string name;
        public AnimatorStateMachine stateMachine;
        public float defaultWeight;
    }

    public sealed class BlendTree : Motion
    {
        readonly List<ChildMotion> list = new List<ChildMotion>();
        public string blendParameter;
        public BlendTreeType blendType;
        public bool useAutomaticThresholds = true;
        public ChildMotion[] children { get { return list.ToArray(); } }
        public void AddChild(Motion motion, float threshold) { list.Add(new ChildMotion { motion = motion, threshold = threshold }); }
    }

    public sealed class AnimatorController : RuntimeAnimatorController
    {
        AnimatorControllerLayer[] layerArray = new AnimatorControllerLayer[0];
        readonly List<AnimatorControllerParameter> parameterList = new List<AnimatorControllerParameter>();
        public AnimatorControllerLayer[] layers { get { return (AnimatorControllerLayer[])layerArray.Clone(); } set { layerArray = value; } }
        public AnimatorControllerParameter[] parameters { get { return parameterList.ToArray(); } set { parameterList.Clear(); parameterList.AddRange(value); } }

        public void AddParameter(AnimatorControllerParameter paramater) { parameterList.Add(paramater); }
        public void AddParameter(string name, AnimatorControllerParameterType type) { parameterList.Add(new AnimatorControllerParameter { name = name, type = type }); }

        public static AnimatorController CreateAnimatorControllerAtPath(string path)
        {
            var c = new AnimatorController { name = System.IO.Path.GetFileNameWithoutExtension(path) };
            AssetDatabase.CreateAsset(c, path);
            // As Unity: a new controller has one "Base Layer" with an empty state machine.
            var sm = new AnimatorStateMachine { name = "Base Layer" };
            AssetDatabase.AddObjectToAsset(sm, c);
            c.layerArray = new[] { new AnimatorControllerLayer { name = "Base Layer", stateMachine = sm, defaultWeight = 1f } };
            return c;
        }
    }
}
