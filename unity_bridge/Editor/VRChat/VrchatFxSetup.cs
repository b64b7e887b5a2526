// One click: a VRChat avatar's FX layer, expression parameters and menu toggle for ser-daemon's compact
// parameters (SER_Label, SER_Intensity; SER_Enabled for the toggle). Editor only, and compiled only with
// the VRChat Avatars SDK installed (see SerDaemon.Bridge.VRChat.Editor.asmdef).
using System;
using System.Collections.Generic;
using System.Text;
using UnityEditor;
using UnityEditor.Animations;
using UnityEngine;
using VRC.SDK3.Avatars.Components;
using VRC.SDK3.Avatars.ScriptableObjects;

namespace SerDaemon.Bridge.VRChat
{
    /// <summary>
    /// Adds to a VRChat avatar what the daemon's compact parameter set (ser-daemon --osc vrchat) needs:
    /// the expression parameters SER_Label (Int), SER_Intensity (Float), both synced, and SER_Enabled (Bool,
    /// saved, default on); an FX layer "SER Daemon" with one state per SER_Label value (0 = rest, k = the
    /// model's k-th label), each a 1D blend tree on SER_Intensity from the rest face to that emotion's face,
    /// entered from Any State when SER_Label equals k while SER_Enabled is on, and an "Off" state while it is
    /// off; and a menu toggle for SER_Enabled. Existing FX controller, parameters and menu are kept and
    /// extended; running it again replaces its own layer, clips and toggle instead of adding copies.
    /// </summary>
    public static class VrchatFxSetup
    {
        public const string LabelParameter = "SER_Label";
        public const string IntensityParameter = "SER_Intensity";
        public const string EnabledParameter = "SER_Enabled";
        public const string LayerName = "SER Daemon";
        public const string ToggleName = "SER Emotions";
        public const string RestState = "SER 0 rest";
        public const string OffState = "SER off";
        /// <summary>VRChat's budget of synced parameter bits.</summary>
        public const int MaxSyncedBits = 256;

        /// <summary>The shipped model's labels in its own order: SER_Label k = 1 + index (ser-daemon --vrchat-table).</summary>
        public static readonly string[] ShippedLabels = { "angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised" };

        /// <summary>What to build; the defaults fit the shipped model and VRoid / VRM-style face blendshapes.</summary>
        public sealed class Settings
        {
            /// <summary>The model's labels in its order (the rows of ser-daemon --vrchat-table); SER_Label k shows labels[k-1].</summary>
            public string[] Labels = ShippedLabels;
            /// <summary>The face mesh; null: the descriptor's VisemeSkinnedMesh, else the first SkinnedMeshRenderer with a match.</summary>
            public SkinnedMeshRenderer Face;
            /// <summary>Label to blendshape bindings (names tried as given, then with each prefix, case-insensitively).</summary>
            public List<BlendshapeBinding> Bindings = DefaultBindings.FromLabels("");
            public string[] Prefixes = { "", "Fcl_ALL_", "vrc.", "Face." };
            /// <summary>Transition time between faces, seconds: the face eases instead of snapping.</summary>
            public float TransitionSeconds = 0.2f;
            /// <summary>
            /// Write Defaults of the generated states. Off by default (the rest clip sets every driven blendshape
            /// itself); set it to match the rest of your FX controller, since mixing both in one controller misbehaves.
            /// </summary>
            public bool WriteDefaults = false;
            /// <summary>Folder for the generated assets (created if missing).</summary>
            public string Folder = "Assets/SerDaemon/VRChat";
        }

        /// <summary>What the setup did, for the Console and the tests.</summary>
        public sealed class Result
        {
            public AnimatorController Controller;
            public VRCExpressionParameters Parameters;
            public VRCExpressionsMenu Menu;
            public readonly List<string> Notes = new List<string>();
            public int SyncedBits;

            public override string ToString()
            {
                var sb = new StringBuilder("SER Daemon VRChat setup: FX layer '" + LayerName + "' in " + AssetDatabase.GetAssetPath(Controller) +
                    ", " + SyncedBits + " of " + MaxSyncedBits + " synced bits used");
                foreach (var n in Notes) sb.Append("\n- ").Append(n);
                return sb.ToString();
            }
        }

        /// <summary>Thrown for what the setup must not paper over (budget, menu full, a parameter of another type).</summary>
        public sealed class SetupException : Exception
        {
            public SetupException(string message) : base(message) { }
        }

        /// <summary>Set the avatar up (see the class summary). Records Undo on the descriptor.</summary>
        public static Result Setup(VRCAvatarDescriptor avatar, Settings settings = null)
        {
            if (avatar == null) throw new SetupException("select a GameObject with a VRC Avatar Descriptor");
            settings = settings ?? new Settings();
            if (settings.Labels == null || settings.Labels.Length == 0 || settings.Labels.Length > 254)
                throw new SetupException("Labels: 1 to 254 labels expected (the rows of ser-daemon --vrchat-table)");
            var result = new Result();
            var face = settings.Face != null ? settings.Face : FindFace(avatar, settings);
            if (face == null) throw new SetupException("no face mesh: set the descriptor's Face Mesh (VisemeSkinnedMesh) or Settings.Face");
            string path = RelativePath(face.transform, avatar.transform);
            Preflight(avatar); // refuse before changing anything
            EnsureFolder(settings.Folder);
            Undo.RecordObject(avatar, "SER Daemon VRChat setup");

            result.Parameters = SetupParameters(avatar, settings, result);
            result.Controller = SetupController(avatar, settings, result, face, path);
            result.Menu = SetupMenu(avatar, settings, result);
            avatar.customExpressions = true;
            EditorUtility.SetDirty(avatar);
            AssetDatabase.SaveAssets();
            return result;
        }

        /// <summary>Everything that would stop the setup halfway, checked first: the avatar is left untouched when one fails.</summary>
        static void Preflight(VRCAvatarDescriptor avatar)
        {
            var list = new List<VRCExpressionParameters.Parameter>();
            if (avatar.expressionParameters != null && avatar.expressionParameters.parameters != null) list.AddRange(avatar.expressionParameters.parameters);
            int bits = SyncedBits(list);
            bits += Missing(list, LabelParameter, VRCExpressionParameters.ValueType.Int) + Missing(list, IntensityParameter, VRCExpressionParameters.ValueType.Float)
                  + Missing(list, EnabledParameter, VRCExpressionParameters.ValueType.Bool);
            if (bits > MaxSyncedBits)
                throw new SetupException("synced parameters would use " + bits + " of VRChat's " + MaxSyncedBits + " bits: free " + (bits - MaxSyncedBits) + " bits first");
            var menu = avatar.expressionsMenu;
            if (menu != null && menu.controls != null)
            {
                int others = 0;
                foreach (var c in menu.controls) if (c == null || c.parameter == null || c.parameter.name != EnabledParameter) others++;
                if (others >= VRCExpressionsMenu.MAX_CONTROLS)
                    throw new SetupException("the avatar's expressions menu already has " + VRCExpressionsMenu.MAX_CONTROLS +
                        " controls: move one into a submenu, then run the setup again");
            }
            var layers = avatar.baseAnimationLayers ?? new VRCAvatarDescriptor.CustomAnimLayer[0];
            foreach (var l in layers)
            {
                var c = l.type == VRCAvatarDescriptor.AnimLayerType.FX && !l.isDefault ? l.animatorController as AnimatorController : null;
                if (c == null) continue;
                foreach (var p in c.parameters)
                {
                    var want = p.name == LabelParameter ? AnimatorControllerParameterType.Int : p.name == IntensityParameter ? AnimatorControllerParameterType.Float
                             : p.name == EnabledParameter ? AnimatorControllerParameterType.Bool : p.type;
                    if (p.type != want) throw new SetupException("the FX controller already has a parameter " + p.name + " of type " + p.type + "; expected " + want);
                }
            }
        }

        /// <summary>Synced bits the parameter adds when it is not there yet or not synced; throws for one of another type.</summary>
        static int Missing(List<VRCExpressionParameters.Parameter> list, string name, VRCExpressionParameters.ValueType type)
        {
            foreach (var q in list)
            {
                if (q == null || q.name != name) continue;
                if (q.valueType != type) throw new SetupException("the avatar already has a parameter " + name + " of type " + q.valueType + "; the daemon's is " + type);
                return q.networkSynced ? 0 : (type == VRCExpressionParameters.ValueType.Bool ? 1 : 8);
            }
            return type == VRCExpressionParameters.ValueType.Bool ? 1 : 8;
        }

        static int SyncedBits(List<VRCExpressionParameters.Parameter> list)
        {
            int bits = 0;
            foreach (var q in list)
                if (q != null && !string.IsNullOrEmpty(q.name) && q.networkSynced) bits += q.valueType == VRCExpressionParameters.ValueType.Bool ? 1 : 8;
            return bits;
        }

        // ------------------------------------------------------------------ expression parameters

        static VRCExpressionParameters SetupParameters(VRCAvatarDescriptor avatar, Settings s, Result result)
        {
            var p = avatar.expressionParameters;
            if (p == null)
            {
                p = ScriptableObject.CreateInstance<VRCExpressionParameters>();
                p.parameters = new VRCExpressionParameters.Parameter[0];
                AssetDatabase.CreateAsset(p, AssetDatabase.GenerateUniqueAssetPath(s.Folder + "/SER Parameters.asset"));
                avatar.expressionParameters = p;
                result.Notes.Add("created expression parameters " + AssetDatabase.GetAssetPath(p));
            }
            var list = new List<VRCExpressionParameters.Parameter>(p.parameters ?? new VRCExpressionParameters.Parameter[0]);
            Want(list, LabelParameter, VRCExpressionParameters.ValueType.Int, 0f, false, result);
            Want(list, IntensityParameter, VRCExpressionParameters.ValueType.Float, 0f, false, result);
            Want(list, EnabledParameter, VRCExpressionParameters.ValueType.Bool, 1f, true, result);
            result.SyncedBits = SyncedBits(list);
            Undo.RecordObject(p, "SER Daemon VRChat setup");
            p.parameters = list.ToArray();
            EditorUtility.SetDirty(p);
            return p;
        }

        static void Want(List<VRCExpressionParameters.Parameter> list, string name, VRCExpressionParameters.ValueType type, float value, bool saved, Result result)
        {
            foreach (var q in list)
            {
                if (q == null || q.name != name) continue;
                q.networkSynced = true; // the type was checked in Preflight
                return;
            }
            list.Add(new VRCExpressionParameters.Parameter { name = name, valueType = type, defaultValue = value, saved = saved, networkSynced = true });
            result.Notes.Add("added parameter " + name + " (" + type + ", synced)");
        }

        // ------------------------------------------------------------------ FX controller and layer

        static AnimatorController SetupController(VRCAvatarDescriptor avatar, Settings s, Result result, SkinnedMeshRenderer face, string path)
        {
            var layers = avatar.baseAnimationLayers ?? new VRCAvatarDescriptor.CustomAnimLayer[0];
            int fx = -1;
            for (int i = 0; i < layers.Length; i++) if (layers[i].type == VRCAvatarDescriptor.AnimLayerType.FX) fx = i;
            AnimatorController controller = fx >= 0 && !layers[fx].isDefault ? layers[fx].animatorController as AnimatorController : null;
            if (controller == null)
            {
                controller = AnimatorController.CreateAnimatorControllerAtPath(AssetDatabase.GenerateUniqueAssetPath(s.Folder + "/SER FX.controller"));
                result.Notes.Add("created FX controller " + AssetDatabase.GetAssetPath(controller));
                var slot = new VRCAvatarDescriptor.CustomAnimLayer { type = VRCAvatarDescriptor.AnimLayerType.FX, isEnabled = true, isDefault = false, animatorController = controller };
                if (fx >= 0) layers[fx] = slot;
                else
                {
                    var grown = new VRCAvatarDescriptor.CustomAnimLayer[layers.Length + 1];
                    Array.Copy(layers, grown, layers.Length);
                    grown[layers.Length] = slot;
                    layers = grown;
                }
                avatar.baseAnimationLayers = layers;
                avatar.customizeAnimationLayers = true;
            }
            Undo.RecordObject(controller, "SER Daemon VRChat setup");
            AddParameter(controller, LabelParameter, AnimatorControllerParameterType.Int);
            AddParameter(controller, IntensityParameter, AnimatorControllerParameterType.Float);
            AddParameter(controller, EnabledParameter, AnimatorControllerParameterType.Bool, true);

            // Running it again replaces the layer (its clips and trees stay as sub-assets; they are replaced too).
            var kept = new List<AnimatorControllerLayer>();
            foreach (var l in controller.layers)
            {
                if (l.name != LayerName) { kept.Add(l); continue; }
                DestroyLayer(l);
                result.Notes.Add("replaced the existing '" + LayerName + "' layer");
            }
            RemoveOwnSubAssets(controller);

            var sm = new AnimatorStateMachine { name = LayerName };
            AssetDatabase.AddObjectToAsset(sm, controller);
            var layer = new AnimatorControllerLayer { name = LayerName, defaultWeight = 1f, stateMachine = sm };
            kept.Add(layer);
            controller.layers = kept.ToArray();

            var shapes = ResolveShapes(face, s, result);
            var rest = Clip(controller, "SER rest", path, shapes, null, s.Bindings);
            var restState = sm.AddState(RestState, new Vector3(300, 0, 0));
            Prepare(restState, rest, s);
            sm.defaultState = restState;
            var off = sm.AddState(OffState, new Vector3(300, -80, 0));
            Prepare(off, rest, s);
            var toOff = sm.AddAnyStateTransition(off);
            Configure(toOff, s);
            toOff.AddCondition(AnimatorConditionMode.IfNot, 0f, EnabledParameter);
            Enter(sm, restState, 0, s);
            for (int k = 1; k <= s.Labels.Length; k++)
            {
                string label = s.Labels[k - 1];
                var face1 = Clip(controller, "SER " + label, path, shapes, label, s.Bindings);
                var tree = new BlendTree
                {
                    name = "SER " + label + " by intensity",
                    blendType = BlendTreeType.Simple1D,
                    blendParameter = IntensityParameter,
                    useAutomaticThresholds = false,
                };
                AssetDatabase.AddObjectToAsset(tree, controller);
                tree.AddChild(rest, 0f);
                tree.AddChild(face1, 1f);
                var state = sm.AddState("SER " + k + " " + label, new Vector3(600, 60 * (k - 1), 0));
                Prepare(state, tree, s);
                Enter(sm, state, k, s);
            }
            EditorUtility.SetDirty(controller);
            return controller;
        }

        static void AddParameter(AnimatorController c, string name, AnimatorControllerParameterType type, bool defaultBool = false)
        {
            foreach (var p in c.parameters)
            {
                if (p.name != name) continue;
                if (p.type != type) throw new SetupException("the FX controller already has a parameter " + name + " of type " + p.type + "; expected " + type);
                return;
            }
            c.AddParameter(new AnimatorControllerParameter { name = name, type = type, defaultBool = defaultBool });
        }

        /// <summary>Every state's motion sets every driven blendshape itself (the rest clip sets them to 0), so either Write Defaults works.</summary>
        static void Prepare(AnimatorState state, Motion motion, Settings s)
        {
            state.motion = motion;
            state.writeDefaultValues = s.WriteDefaults;
        }

        static void Configure(AnimatorStateTransition t, Settings s)
        {
            t.hasExitTime = false;
            t.hasFixedDuration = true;
            t.duration = Math.Max(0f, s.TransitionSeconds);
            t.canTransitionToSelf = false;
        }

        static void Enter(AnimatorStateMachine sm, AnimatorState state, int k, Settings s)
        {
            var t = sm.AddAnyStateTransition(state);
            Configure(t, s);
            t.AddCondition(AnimatorConditionMode.Equals, k, LabelParameter);
            t.AddCondition(AnimatorConditionMode.If, 0f, EnabledParameter);
        }

        /// <summary>A previous run's layer: its transitions and states are nameless or generic sub-assets, removed one by one.</summary>
        static void DestroyLayer(AnimatorControllerLayer layer)
        {
            var sm = layer.stateMachine;
            if (sm == null) return;
            foreach (var t in sm.anyStateTransitions) UnityEngine.Object.DestroyImmediate(t, true);
            foreach (var child in sm.states)
            {
                if (child.state == null) continue;
                foreach (var t in child.state.transitions) UnityEngine.Object.DestroyImmediate(t, true);
                UnityEngine.Object.DestroyImmediate(child.state, true);
            }
            UnityEngine.Object.DestroyImmediate(sm, true);
        }

        /// <summary>A previous run's clips and blend trees (named "SER ..."), which no layer uses any more.</summary>
        static void RemoveOwnSubAssets(AnimatorController controller)
        {
            string path = AssetDatabase.GetAssetPath(controller);
            foreach (var o in AssetDatabase.LoadAllAssetsAtPath(path))
                if (o != null && o != controller && o.name != null && (o.name.StartsWith("SER ", StringComparison.Ordinal) || o.name == LayerName))
                    UnityEngine.Object.DestroyImmediate(o, true);
        }

        // ------------------------------------------------------------------ clips

        /// <summary>Blendshape name on the mesh for each binding target, resolved once; unresolved ones are noted.</summary>
        static Dictionary<string, string> ResolveShapes(SkinnedMeshRenderer face, Settings s, Result result)
        {
            var found = new Dictionary<string, string>(StringComparer.Ordinal);
            var mesh = face.sharedMesh;
            foreach (var b in s.Bindings)
            {
                if (b == null || string.IsNullOrEmpty(b.Blendshape) || found.ContainsKey(b.Blendshape)) continue;
                string hit = null;
                foreach (var prefix in s.Prefixes)
                {
                    for (int i = 0; mesh != null && i < mesh.blendShapeCount && hit == null; i++)
                        if (string.Equals(mesh.GetBlendShapeName(i), prefix + b.Blendshape, StringComparison.OrdinalIgnoreCase)) hit = mesh.GetBlendShapeName(i);
                    if (hit != null) break;
                }
                found[b.Blendshape] = hit;
                if (hit == null) result.Notes.Add("no blendshape like '" + b.Blendshape + "' on " + face.name + ": labels bound to it show nothing (edit Settings.Bindings)");
            }
            return found;
        }

        /// <summary>A clip setting the face's blendshapes: every bound one to 0, plus the label's ones at 100 x gain (summed, clamped).</summary>
        static AnimationClip Clip(AnimatorController controller, string name, string path, Dictionary<string, string> shapes, string label, List<BlendshapeBinding> bindings)
        {
            var values = new Dictionary<string, float>(StringComparer.Ordinal);
            foreach (var kv in shapes) if (kv.Value != null) values[kv.Value] = 0f;
            if (label != null)
                foreach (var kv in BindingsFor(label, shapes, bindings))
                    values[kv.Key] = Math.Min(100f, values[kv.Key] + kv.Value);
            var clip = new AnimationClip { name = name };
            foreach (var kv in values)
                AnimationUtility.SetEditorCurve(clip, EditorCurveBinding.FloatCurve(path, typeof(SkinnedMeshRenderer), "blendShape." + kv.Key),
                    AnimationCurve.Constant(0f, 0f, kv.Value));
            AssetDatabase.AddObjectToAsset(clip, controller);
            return clip;
        }

        static List<KeyValuePair<string, float>> BindingsFor(string label, Dictionary<string, string> shapes, List<BlendshapeBinding> bindings)
        {
            var list = new List<KeyValuePair<string, float>>();
            foreach (var b in bindings)
            {
                string shape;
                if (b == null || b.Source != label || !shapes.TryGetValue(b.Blendshape ?? "", out shape) || shape == null) continue;
                list.Add(new KeyValuePair<string, float>(shape, 100f * (float.IsNaN(b.Gain) ? 0f : Math.Max(0f, b.Gain))));
            }
            return list;
        }

        // ------------------------------------------------------------------ menu

        static VRCExpressionsMenu SetupMenu(VRCAvatarDescriptor avatar, Settings s, Result result)
        {
            var menu = avatar.expressionsMenu;
            if (menu == null)
            {
                menu = ScriptableObject.CreateInstance<VRCExpressionsMenu>();
                AssetDatabase.CreateAsset(menu, AssetDatabase.GenerateUniqueAssetPath(s.Folder + "/SER Menu.asset"));
                avatar.expressionsMenu = menu;
                result.Notes.Add("created expressions menu " + AssetDatabase.GetAssetPath(menu));
            }
            Undo.RecordObject(menu, "SER Daemon VRChat setup");
            if (menu.controls == null) menu.controls = new List<VRCExpressionsMenu.Control>();
            menu.controls.RemoveAll(c => c != null && c.parameter != null && c.parameter.name == EnabledParameter); // a rerun replaces its toggle
            menu.controls.Add(new VRCExpressionsMenu.Control
            {
                name = ToggleName,
                type = VRCExpressionsMenu.Control.ControlType.Toggle,
                parameter = new VRCExpressionsMenu.Control.Parameter { name = EnabledParameter },
                value = 1f,
            });
            EditorUtility.SetDirty(menu);
            return menu;
        }

        // ------------------------------------------------------------------ scene helpers

        static SkinnedMeshRenderer FindFace(VRCAvatarDescriptor avatar, Settings s)
        {
            if (avatar.VisemeSkinnedMesh != null) return avatar.VisemeSkinnedMesh;
            foreach (var r in avatar.GetComponentsInChildren<SkinnedMeshRenderer>(true))
                if (r.sharedMesh != null && r.sharedMesh.blendShapeCount > 0) return r;
            return null;
        }

        /// <summary>The path of a child transform below the avatar root, as animation clips address it ("Body/Face").</summary>
        public static string RelativePath(Transform t, Transform root)
        {
            var parts = new List<string>();
            for (var x = t; x != null && x != root; x = x.parent) parts.Insert(0, x.name);
            return string.Join("/", parts.ToArray());
        }

        static void EnsureFolder(string folder)
        {
            if (AssetDatabase.IsValidFolder(folder)) return;
            int slash = folder.LastIndexOf('/');
            if (slash <= 0) throw new SetupException("Folder must be under Assets/: " + folder);
            string parent = folder.Substring(0, slash);
            EnsureFolder(parent);
            AssetDatabase.CreateFolder(parent, folder.Substring(slash + 1));
        }
    }
}
