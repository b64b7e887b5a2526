// Minimal stand-ins for the UnityEngine types the bridge's Unity scripts use, so CI can compile
// (and drive) Runtime/Unity with Mono's mcs, outside Unity. Not shipped: the folder ends in "~",
// which Unity ignores. Behaviour is simplified but real enough for Tests~/Probe/UnityHarness.cs.
using System;
using System.Collections.Generic;
using System.Reflection;

namespace UnityEngine
{
    public class Object
    {
        internal static readonly List<Object> All = new List<Object>();
        public string name = "";

        protected Object() { All.Add(this); }

        /// <summary>Stub only: forget every object (a new scene), so Find* does not see earlier tests' objects.</summary>
        public static void StubNewScene() { All.Clear(); }

#if SERDAEMON_HAS_FIND_FIRST
        // As in Unity 2023.1+: obsolete, so -warnaserror proves the bridge never calls it on such versions.
        [Obsolete("Use FindFirstObjectByType")]
#endif
        public static T FindObjectOfType<T>() where T : Object
        {
            foreach (var o in All) if (o is T) return (T)o;
            return null;
        }

        public static T FindFirstObjectByType<T>() where T : Object
        {
            foreach (var o in All) if (o is T) return (T)o;
            return null;
        }

        bool destroyed;

        /// <summary>As Unity: the object is gone (a scene unloaded it or a script destroyed it); "== null" is true from then on.</summary>
        public static void DestroyImmediate(Object o, bool allowDestroyingAssets) { Destroy(o); }

        public static void Destroy(Object o)
        {
            if (ReferenceEquals(o, null)) return;
            o.destroyed = true;
            All.Remove(o);
            var go = o as GameObject;
            if (!ReferenceEquals(go, null)) foreach (var c in go.Components) { c.destroyed = true; All.Remove(c); }
        }

        static bool Gone(Object o) { return ReferenceEquals(o, null) || o.destroyed; }

        // As Unity's CompareBaseObjects: a destroyed object equals null.
        public static bool operator ==(Object a, Object b)
        {
            if (Gone(a) || Gone(b)) return Gone(a) && Gone(b);
            return ReferenceEquals(a, b);
        }

        public static bool operator !=(Object a, Object b) { return !(a == b); }
        public override bool Equals(object o) { return ReferenceEquals(this, o); }
        public override int GetHashCode() { return base.GetHashCode(); }
        public static implicit operator bool(Object o) { return !Gone(o); }
    }

    public sealed class GameObject : Object
    {
        internal readonly List<Component> Components = new List<Component>();
        public readonly Transform transform;
        public GameObject(string name)
        {
            this.name = name;
            transform = new Transform();
            transform.gameObject = this;
            transform.name = name;
            Components.Add(transform);
        }

        public T AddComponent<T>() where T : Component, new()
        {
            var c = new T();
            c.gameObject = this;
            c.name = name;
            Components.Add(c);
            return c;
        }

        public T GetComponent<T>() where T : Component { return transform.GetComponent<T>(); }
    }

    public class Component : Object
    {
        public GameObject gameObject;
        public Transform transform { get { return gameObject != null ? gameObject.transform : null; } }

        public T GetComponent<T>() where T : Component
        {
            if (gameObject == null) return null;
            foreach (var c in gameObject.Components) if (c is T && c) return (T)c; // a destroyed component is skipped, as in Unity
            return null;
        }

        public T[] GetComponentsInChildren<T>(bool includeInactive) where T : Component
        {
            var found = new List<T>();
            Collect(transform, found);
            return found.ToArray();
        }

        static void Collect<T>(Transform t, List<T> into) where T : Component
        {
            if (t == null) return;
            foreach (var c in t.gameObject.Components) if (c is T && c) into.Add((T)c);
            foreach (var child in t.Children) Collect(child, into);
        }
    }

    public sealed class Transform : Component
    {
        internal readonly List<Transform> Children = new List<Transform>();
        Transform parentTransform;
        public Transform parent { get { return parentTransform; } }

        public void SetParent(Transform p)
        {
            if (parentTransform != null) parentTransform.Children.Remove(this);
            parentTransform = p;
            if (p != null) p.Children.Add(this);
        }
    }

    public class Behaviour : Component
    {
        public bool enabled = true;
        public bool isActiveAndEnabled { get { return enabled; } }
    }

    public class MonoBehaviour : Behaviour
    {
        /// <summary>Stub only: call a Unity message method (Update, OnEnable, ...) by name, as Unity would.</summary>
        public void StubInvoke(string method)
        {
            for (var t = GetType(); t != null && t != typeof(MonoBehaviour); t = t.BaseType)
            {
                var m = t.GetMethod(method, BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly);
                if (m != null) { m.Invoke(this, null); return; }
            }
        }

        /// <summary>Stub only: the DefaultExecutionOrder of this script's class (0 without one).</summary>
        public int StubExecutionOrder
        {
            get
            {
                var a = (DefaultExecutionOrder)Attribute.GetCustomAttribute(GetType(), typeof(DefaultExecutionOrder), false);
                return a != null ? a.order : 0;
            }
        }
    }

    /// <summary>
    /// Stub only: one frame of Unity's player loop for the given scripts: every enabled script's Update,
    /// then every LateUpdate, each phase in DefaultExecutionOrder order (ties in the given order), with
    /// Time advanced by dt first (scaled by timeScale; unscaled not).
    /// </summary>
    public static class StubPlayerLoop
    {
        public static void Frame(float dt, params MonoBehaviour[] scripts)
        {
            Time.unscaledDeltaTime = dt;
            Time.unscaledTime += dt;
            Time.deltaTime = dt * Time.timeScale;
            Time.time += Time.deltaTime;
            var ordered = new List<MonoBehaviour>(scripts);
            var index = new Dictionary<MonoBehaviour, int>();
            for (int i = 0; i < scripts.Length; i++) index[scripts[i]] = i;
            ordered.Sort((a, b) => a.StubExecutionOrder != b.StubExecutionOrder ? a.StubExecutionOrder.CompareTo(b.StubExecutionOrder) : index[a].CompareTo(index[b]));
            foreach (var s in ordered) if (s.enabled) s.StubInvoke("Update");
            foreach (var s in ordered) if (s.enabled) s.StubInvoke("LateUpdate");
        }
    }

    public class Renderer : Component { }

    public sealed class Mesh : Object
    {
        readonly List<string> shapes = new List<string>();
        public void StubAddBlendShape(string shape) { shapes.Add(shape); }
        public int blendShapeCount { get { return shapes.Count; } }
        public int GetBlendShapeIndex(string blendShapeName) { return shapes.IndexOf(blendShapeName); }

        public string GetBlendShapeName(int shapeIndex)
        {
            if (shapeIndex < 0 || shapeIndex >= shapes.Count) throw new ArgumentOutOfRangeException("shapeIndex");
            return shapes[shapeIndex];
        }
    }

    public class SkinnedMeshRenderer : Renderer
    {
        readonly Dictionary<int, float> weights = new Dictionary<int, float>();
        public Mesh sharedMesh;
        public int StubWrites;

        public void SetBlendShapeWeight(int index, float value)
        {
            if (sharedMesh == null || index < 0 || index >= sharedMesh.blendShapeCount)
                throw new ArgumentOutOfRangeException("index"); // Unity logs an error here
            weights[index] = value;
            StubWrites++;
        }

        public float GetBlendShapeWeight(int index)
        {
            float v;
            return weights.TryGetValue(index, out v) ? v : 0f;
        }
    }

    public static class Time
    {
        public static float deltaTime = 1f / 60f;
        public static float unscaledDeltaTime = 1f / 60f;
        public static float time;
        public static float unscaledTime;
        public static float timeScale = 1f;
    }

    public class ScriptableObject : Object
    {
        public static T CreateInstance<T>() where T : ScriptableObject, new() { return new T(); }
    }

    public class TextAsset : Object
    {
        public string text = "";
    }

    public struct Rect
    {
        public float x, y, width, height;
        public Rect(float x, float y, float width, float height) { this.x = x; this.y = y; this.width = width; this.height = height; }
    }

    public static class GUI
    {
        public static string StubLastLabel;
        public static void Label(Rect position, string text) { StubLastLabel = text; }
    }

    public static class Mathf
    {
        public static float Clamp01(float value) { return value < 0f ? 0f : (value > 1f ? 1f : value); }
        /// <summary>As Unity (System.Math.Round: halves to even, so 0.5 rounds to 0).</summary>
        public static float Round(float f) { return (float)Math.Round(f); }
    }

    public static class Application
    {
        public static bool isPlaying = true;
    }

    public static class Debug
    {
        public static Action<string> Sink = Console.WriteLine;
        public static void Log(object message) { Sink("LOG " + message); }
        public static void Log(object message, Object context) { Log(message); }
        public static void LogWarning(object message) { Sink("WARNING " + message); }
        public static void LogWarning(object message, Object context) { LogWarning(message); }
        public static void LogError(object message) { Sink("ERROR " + message); }
        public static void LogError(object message, Object context) { LogError(message); }
        public static void LogException(Exception exception) { Sink("EXCEPTION " + exception); }
        public static void LogException(Exception exception, Object context) { LogException(exception); }
    }

    [AttributeUsage(AttributeTargets.Field)]
    public sealed class SerializeField : Attribute { }

    [AttributeUsage(AttributeTargets.Field)]
    public sealed class TooltipAttribute : Attribute { public TooltipAttribute(string tooltip) { } }

    [AttributeUsage(AttributeTargets.Field, AllowMultiple = true)]
    public sealed class HeaderAttribute : Attribute { public HeaderAttribute(string header) { } }

    [AttributeUsage(AttributeTargets.Field)]
    public sealed class RangeAttribute : Attribute { public RangeAttribute(float min, float max) { } }

    [AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
    public sealed class ContextMenu : Attribute { public ContextMenu(string itemName) { } }

    [AttributeUsage(AttributeTargets.Class)]
    public sealed class AddComponentMenu : Attribute { public AddComponentMenu(string menuName) { } }

    [AttributeUsage(AttributeTargets.Class)]
    public sealed class DisallowMultipleComponent : Attribute { }

    [AttributeUsage(AttributeTargets.Class)]
    public sealed class DefaultExecutionOrder : Attribute
    {
        public DefaultExecutionOrder(int order) { this.order = order; }
        public int order { get; private set; }
    }
}

namespace UnityEngine.Events
{
    /// <summary>Stand-in for Unity's UnityEvent&lt;T0&gt;: listeners added in code (persistent ones come from the Inspector).</summary>
    public delegate void UnityAction<T0>(T0 arg0);

    [Serializable]
    public abstract class UnityEvent<T0>
    {
        readonly List<UnityAction<T0>> listeners = new List<UnityAction<T0>>();
        public void AddListener(UnityAction<T0> call) { listeners.Add(call); }
        public void RemoveListener(UnityAction<T0> call) { listeners.Remove(call); }
        public void Invoke(T0 arg0) { for (int i = 0; i < listeners.Count; i++) listeners[i](arg0); }
    }
}
