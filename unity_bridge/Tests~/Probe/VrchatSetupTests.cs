// The one-click VRChat setup (Editor/VRChat) on stand-ins of the SDK and UnityEditor: the generated
// parameters, menu, and the FX controller's states and transitions, walked by a small evaluator of Any
// State transitions, as the Animator would pick them.
//
//   mono VrchatSetup.exe     -> "VRCHAT ok|FAIL <name> ..." lines, then "VRCHAT PASS|FAIL"
using System;
using System.Collections.Generic;
using System.Linq;
using SerDaemon.Bridge.VRChat;
using UnityEditor;
using UnityEditor.Animations;
using UnityEngine;
using VRC.SDK3.Avatars.Components;
using VRC.SDK3.Avatars.ScriptableObjects;

static class VrchatSetupTests
{
    static int passed, failed;

    static void Check(string name, bool ok, string detail = "")
    {
        if (ok) passed++; else failed++;
        Console.WriteLine("VRCHAT " + (ok ? "ok " : "FAIL ") + name + (detail.Length > 0 ? " " + detail : ""));
    }

    /// <summary>A VRoid-like avatar: root with the descriptor, a child "Body" whose mesh has face blendshapes.</summary>
    static VRCAvatarDescriptor Avatar(params string[] shapes)
    {
        UnityEngine.Object.StubNewScene();
        var root = new GameObject("Avatar");
        var avatar = root.AddComponent<VRCAvatarDescriptor>();
        var body = new GameObject("Body");
        body.transform.SetParent(root.transform);
        var face = body.AddComponent<SkinnedMeshRenderer>();
        face.sharedMesh = new Mesh { name = "Body" };
        foreach (var s in shapes) face.sharedMesh.StubAddBlendShape(s);
        avatar.VisemeSkinnedMesh = face;
        avatar.baseAnimationLayers = new[]
        {
            new VRCAvatarDescriptor.CustomAnimLayer { type = VRCAvatarDescriptor.AnimLayerType.Base, isDefault = true },
            new VRCAvatarDescriptor.CustomAnimLayer { type = VRCAvatarDescriptor.AnimLayerType.Gesture, isDefault = true },
            new VRCAvatarDescriptor.CustomAnimLayer { type = VRCAvatarDescriptor.AnimLayerType.FX, isDefault = true },
        };
        return avatar;
    }

    static readonly string[] VroidFace = { "Fcl_ALL_Neutral", "Fcl_ALL_Angry", "Fcl_ALL_Fun", "Fcl_ALL_Joy", "Fcl_ALL_Sorrow", "Fcl_ALL_Surprised", "vrc.v_aa" };

    /// <summary>
    /// The Animator's choice among Any State transitions: the first whose conditions all hold, skipping one
    /// into the current state when it cannot transition to itself; null when none fires.
    /// </summary>
    static AnimatorState Step(AnimatorStateMachine sm, AnimatorState current, int label, float intensity, bool enabled)
    {
        foreach (var t in sm.anyStateTransitions)
        {
            bool all = true;
            foreach (var c in t.conditions)
            {
                switch (c.mode)
                {
                    case AnimatorConditionMode.Equals: all &= c.parameter == VrchatFxSetup.LabelParameter && label == (int)c.threshold; break;
                    case AnimatorConditionMode.NotEqual: all &= c.parameter == VrchatFxSetup.LabelParameter && label != (int)c.threshold; break;
                    case AnimatorConditionMode.If: all &= c.parameter == VrchatFxSetup.EnabledParameter && enabled; break;
                    case AnimatorConditionMode.IfNot: all &= c.parameter == VrchatFxSetup.EnabledParameter && !enabled; break;
                    case AnimatorConditionMode.Greater: all &= c.parameter == VrchatFxSetup.IntensityParameter && intensity > c.threshold; break;
                    case AnimatorConditionMode.Less: all &= c.parameter == VrchatFxSetup.IntensityParameter && intensity < c.threshold; break;
                }
            }
            if (!all) continue;
            if (t.destinationState == current && !t.canTransitionToSelf) continue;
            return t.destinationState;
        }
        return null;
    }

    static AnimatorControllerLayer Layer(AnimatorController c) { return c.layers.FirstOrDefault(l => l.name == VrchatFxSetup.LayerName); }

    static float Curve(Motion m, string shape)
    {
        var clip = m as AnimationClip;
        AnimationCurve curve;
        return clip != null && clip.StubCurvesByKey.TryGetValue("Body|SkinnedMeshRenderer|blendShape." + shape, out curve) ? curve.keys[0].value : float.NaN;
    }

    static int Main()
    {
        FreshAvatar();
        StatesAndTransitions();
        RerunIsIdempotentAndKeepsWhatWasThere();
        RefusesWhatItMustNotPaperOver();
        Console.WriteLine("VRCHAT " + (failed == 0 ? "PASS" : "FAIL") + " passed=" + passed + " failed=" + failed);
        return failed == 0 ? 0 : 1;
    }

    static void FreshAvatar()
    {
        AssetDatabase.StubReset();
        var avatar = Avatar(VroidFace);
        var r = VrchatFxSetup.Setup(avatar);
        var p = avatar.expressionParameters.parameters;
        var label = p.Single(x => x.name == "SER_Label");
        var intensity = p.Single(x => x.name == "SER_Intensity");
        var enabled = p.Single(x => x.name == "SER_Enabled");
        Check("parameters", p.Length == 3 && label.valueType == VRCExpressionParameters.ValueType.Int && label.networkSynced && label.defaultValue == 0f
            && intensity.valueType == VRCExpressionParameters.ValueType.Float && intensity.networkSynced
            && enabled.valueType == VRCExpressionParameters.ValueType.Bool && enabled.saved && enabled.defaultValue == 1f && r.SyncedBits == 17,
            "SER_Label Int, SER_Intensity Float, SER_Enabled Bool saved on; " + r.SyncedBits + " synced bits");
        var fx = avatar.baseAnimationLayers.Single(l => l.type == VRCAvatarDescriptor.AnimLayerType.FX);
        Check("fx_slot", !fx.isDefault && fx.isEnabled && fx.animatorController == r.Controller && avatar.customizeAnimationLayers && avatar.customExpressions
            && avatar.baseAnimationLayers.Length == 3, AssetDatabase.GetAssetPath(r.Controller));
        var toggle = avatar.expressionsMenu.controls.Single();
        Check("menu_toggle", toggle.type == VRCExpressionsMenu.Control.ControlType.Toggle && toggle.parameter.name == "SER_Enabled" && toggle.value == 1f,
            toggle.name);
        var cp = r.Controller.parameters;
        Check("controller_parameters", cp.Any(x => x.name == "SER_Label" && x.type == AnimatorControllerParameterType.Int)
            && cp.Any(x => x.name == "SER_Intensity" && x.type == AnimatorControllerParameterType.Float)
            && cp.Any(x => x.name == "SER_Enabled" && x.type == AnimatorControllerParameterType.Bool && x.defaultBool));
    }

    static void StatesAndTransitions()
    {
        AssetDatabase.StubReset();
        var avatar = Avatar(VroidFace);
        var r = VrchatFxSetup.Setup(avatar);
        var sm = Layer(r.Controller).stateMachine;
        var names = sm.states.Select(s => s.state.name).ToArray();
        var expected = new[] { "SER 0 rest", "SER off" }.Concat(VrchatFxSetup.ShippedLabels.Select((l, i) => "SER " + (i + 1) + " " + l)).ToArray();
        Check("states", names.SequenceEqual(expected) && sm.defaultState.name == "SER 0 rest" && sm.states.All(s => !s.state.writeDefaultValues),
            string.Join(", ", names));
        var any = sm.anyStateTransitions;
        bool shape = any.Length == 10 && any.All(t => !t.hasExitTime && t.hasFixedDuration && Math.Abs(t.duration - 0.2f) < 1e-6f && !t.canTransitionToSelf);
        var toHappy = any.Single(t => t.destinationState.name == "SER 5 happy").conditions;
        var toOff = any.Single(t => t.destinationState.name == "SER off").conditions;
        Check("transitions", shape && toHappy.Length == 2 && toHappy[0].mode == AnimatorConditionMode.Equals && toHappy[0].threshold == 5f
            && toHappy[1].mode == AnimatorConditionMode.If && toHappy[1].parameter == "SER_Enabled"
            && toOff.Length == 1 && toOff[0].mode == AnimatorConditionMode.IfNot,
            any.Length + " Any State transitions, 0.2 s, no exit time, never into themselves");
        // Walk it: the daemon's values in, the Animator's choices out.
        var current = sm.defaultState;
        var path = new List<string>();
        foreach (var step in new[] { Tuple.Create(5, 0.8f, true), Tuple.Create(5, 0.6f, true), Tuple.Create(1, 0.9f, true), Tuple.Create(1, 0.9f, false),
                                     Tuple.Create(8, 0.9f, false), Tuple.Create(8, 0.9f, true), Tuple.Create(0, 0f, true) })
        {
            var next = Step(sm, current, step.Item1, step.Item2, step.Item3);
            if (next != null) current = next;
            path.Add(current.name);
        }
        Check("walk", string.Join(" > ", path.ToArray()) == "SER 5 happy > SER 5 happy > SER 1 angry > SER off > SER off > SER 8 surprised > SER 0 rest",
            string.Join(" > ", path.ToArray()));
        // Every label's state blends the rest face (intensity 0) into its own face (intensity 1).
        var happy = sm.states.Single(s => s.state.name == "SER 5 happy").state.motion as BlendTree;
        var fearful = (sm.states.Single(s => s.state.name == "SER 4 fearful").state.motion as BlendTree).children[1].motion;
        var rest = sm.defaultState.motion;
        bool trees = sm.states.Skip(2).All(s => s.state.motion is BlendTree && ((BlendTree)s.state.motion).blendParameter == "SER_Intensity"
            && ((BlendTree)s.state.motion).blendType == BlendTreeType.Simple1D && ((BlendTree)s.state.motion).children.Length == 2
            && ((BlendTree)s.state.motion).children[0].motion == rest && ((BlendTree)s.state.motion).children[0].threshold == 0f
            && ((BlendTree)s.state.motion).children[1].threshold == 1f);
        Check("blend_trees_and_clips", trees && Curve(happy.children[1].motion, "Fcl_ALL_Joy") == 100f && Curve(happy.children[1].motion, "Fcl_ALL_Angry") == 0f
            && Curve(fearful, "Fcl_ALL_Sorrow") == 50f && Curve(fearful, "Fcl_ALL_Surprised") == 50f && Curve(rest, "Fcl_ALL_Joy") == 0f
            && float.IsNaN(Curve(rest, "vrc.v_aa")),
            "happy Joy=" + Curve(happy.children[1].motion, "Fcl_ALL_Joy") + ", fearful Sorrow/Surprised=" + Curve(fearful, "Fcl_ALL_Sorrow") + "/" +
            Curve(fearful, "Fcl_ALL_Surprised") + ", rest Joy=" + Curve(rest, "Fcl_ALL_Joy") + "; visemes untouched");
    }

    static void RerunIsIdempotentAndKeepsWhatWasThere()
    {
        AssetDatabase.StubReset();
        var avatar = Avatar("Joy", "Angry", "Sorrow", "Fun"); // no Surprised on this face
        // The avatar already has an FX controller with its own layer, parameters and a menu.
        AssetDatabase.CreateFolder("Assets", "Mine");
        var mine = AnimatorController.CreateAnimatorControllerAtPath("Assets/Mine/FX.controller");
        mine.AddParameter("GestureLeft", AnimatorControllerParameterType.Int);
        var layers = avatar.baseAnimationLayers;
        layers[2] = new VRCAvatarDescriptor.CustomAnimLayer { type = VRCAvatarDescriptor.AnimLayerType.FX, isDefault = false, isEnabled = true, animatorController = mine };
        avatar.expressionParameters = ScriptableObject.CreateInstance<VRCExpressionParameters>();
        avatar.expressionParameters.parameters = new[] { new VRCExpressionParameters.Parameter { name = "Hat", valueType = VRCExpressionParameters.ValueType.Bool } };
        avatar.expressionsMenu = ScriptableObject.CreateInstance<VRCExpressionsMenu>();
        avatar.expressionsMenu.controls.Add(new VRCExpressionsMenu.Control { name = "Hat", type = VRCExpressionsMenu.Control.ControlType.Toggle,
            parameter = new VRCExpressionsMenu.Control.Parameter { name = "Hat" } });
        var first = VrchatFxSetup.Setup(avatar);
        var second = VrchatFxSetup.Setup(avatar);
        var names = mine.layers.Select(l => l.name).ToArray();
        Check("rerun_is_idempotent", second.Controller == mine && string.Join(",", names) == "Base Layer,SER Daemon"
            && avatar.expressionParameters.parameters.Length == 4 && avatar.expressionsMenu.controls.Count == 2
            && mine.parameters.Length == 4 && Layer(mine).stateMachine.states.Length == 10,
            "layers " + string.Join(",", names) + "; parameters " + avatar.expressionParameters.parameters.Length + "; menu " + avatar.expressionsMenu.controls.Count);
        var subAssets = AssetDatabase.LoadAllAssetsAtPath("Assets/Mine/FX.controller").Length;
        Check("rerun_leaves_no_orphans", subAssets == 1 + 1 + 1 + 10 + 10 + 9 + 8,
            subAssets + " objects in the controller file after two runs (controller, 2 state machines, 10 states, 10 transitions, 9 clips, 8 trees)");
        Check("missing_blendshape_noted", first.Notes.Any(n => n.Contains("'Surprised'")) && first.Notes.Count(n => n.StartsWith("no blendshape")) == 1,
            string.Join(" | ", first.Notes.ToArray()));
    }

    static void RefusesWhatItMustNotPaperOver()
    {
        var cases = new Dictionary<string, Action<VRCAvatarDescriptor>>
        {
            { "menu_full", a => { a.expressionsMenu = ScriptableObject.CreateInstance<VRCExpressionsMenu>();
                                  for (int i = 0; i < 8; i++) a.expressionsMenu.controls.Add(new VRCExpressionsMenu.Control { name = "c" + i }); } },
            { "wrong_type", a => { a.expressionParameters = ScriptableObject.CreateInstance<VRCExpressionParameters>();
                                   a.expressionParameters.parameters = new[] { new VRCExpressionParameters.Parameter { name = "SER_Label", valueType = VRCExpressionParameters.ValueType.Float } }; } },
            { "over_budget", a => { a.expressionParameters = ScriptableObject.CreateInstance<VRCExpressionParameters>();
                                    a.expressionParameters.parameters = Enumerable.Range(0, 30).Select(i => new VRCExpressionParameters.Parameter { name = "F" + i,
                                        valueType = VRCExpressionParameters.ValueType.Float }).ToArray(); } },
        };
        var messages = new List<string>();
        foreach (var kv in cases)
        {
            AssetDatabase.StubReset();
            var avatar = Avatar(VroidFace);
            kv.Value(avatar);
            try { VrchatFxSetup.Setup(avatar); messages.Add(kv.Key + ": no error"); }
            catch (VrchatFxSetup.SetupException e)
            {
                // Refused before touching anything: FX still the SDK default, no toggle or parameter added.
                bool untouched = avatar.baseAnimationLayers[2].isDefault && !avatar.customExpressions
                    && (avatar.expressionParameters == null || avatar.expressionParameters.parameters.All(q => !q.name.StartsWith("SER_") || q.name == "SER_Label"))
                    && (avatar.expressionsMenu == null || avatar.expressionsMenu.controls.All(c => c.parameter == null));
                messages.Add(kv.Key + ": " + e.Message + (untouched ? "" : " (BUT THE AVATAR WAS CHANGED)"));
            }
        }
        Check("refuses_menu_full_wrong_type_over_budget", messages.Count(m => !m.Contains("no error") && !m.Contains("CHANGED")) == 3 && messages[0].Contains("8 controls")
            && messages[1].Contains("of type Float") && messages[2].Contains("257 of VRChat's 256"), string.Join(" | ", messages.ToArray()));
    }
}
