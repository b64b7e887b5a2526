// Stand-ins for the VRChat Avatars SDK types the setup tool uses, with the SDK's member names and types
// (VRC.SDK3.Avatars.Components.VRCAvatarDescriptor : VRC.SDKBase.VRC_AvatarDescriptor; CustomAnimLayer,
// AnimLayerType; VRC.SDK3.Avatars.ScriptableObjects.VRCExpressionParameters with Parameter {name,
// valueType, saved, defaultValue, networkSynced} and ValueType {Int, Float, Bool}; VRCExpressionsMenu with
// MAX_CONTROLS and Control {name, icon, type, parameter, value, subMenu} / ControlType {Button = 101,
// Toggle = 102, SubMenu = 103, ...}). Only the members the tool touches; no behaviour.
using System;
using System.Collections.Generic;
using UnityEngine;

namespace VRC.SDKBase
{
    public class VRC_AvatarDescriptor : MonoBehaviour
    {
        public string Name;
        public SkinnedMeshRenderer VisemeSkinnedMesh;
        public string[] VisemeBlendShapes;
    }
}

namespace VRC.SDK3.Avatars.ScriptableObjects
{
    public class VRCExpressionParameters : ScriptableObject
    {
        public const int MAX_PARAMETER_COST = 256;
        public Parameter[] parameters;

        [Serializable]
        public enum ValueType { Int = 0, Float = 1, Bool = 2 }

        [Serializable]
        public class Parameter
        {
            public string name;
            public ValueType valueType;
            public bool saved = true;
            public float defaultValue;
            public bool networkSynced = true;
        }
    }

    public class VRCExpressionsMenu : ScriptableObject
    {
        public const int MAX_CONTROLS = 8;
        public List<Control> controls = new List<Control>();

        [Serializable]
        public class Control
        {
            public string name;
            public Texture2D icon;
            public ControlType type;
            public Parameter parameter;
            public float value = 1f;
            public VRCExpressionsMenu subMenu;

            public enum ControlType { Button = 101, Toggle = 102, SubMenu = 103, TwoAxisPuppet = 201, FourAxisPuppet = 202, RadialPuppet = 203 }

            [Serializable]
            public class Parameter { public string name; }
        }
    }
}

namespace VRC.SDK3.Avatars.Components
{
    using VRC.SDK3.Avatars.ScriptableObjects;

    public class VRCAvatarDescriptor : VRC.SDKBase.VRC_AvatarDescriptor
    {
        public bool customExpressions;
        public VRCExpressionsMenu expressionsMenu;
        public VRCExpressionParameters expressionParameters;
        public bool customizeAnimationLayers;
        public CustomAnimLayer[] specialAnimationLayers;
        public CustomAnimLayer[] baseAnimationLayers;

        [Serializable]
        public enum AnimLayerType { Base = 0, Deprecated0 = 1, Additive = 2, Gesture = 3, Action = 4, FX = 5, Sitting = 6, TPose = 7, IKPose = 8 }

        [Serializable]
        public struct CustomAnimLayer
        {
            public bool isEnabled;
            public AnimLayerType type;
            public RuntimeAnimatorController animatorController;
            public AvatarMask mask;
            public bool isDefault;
        }
    }
}
