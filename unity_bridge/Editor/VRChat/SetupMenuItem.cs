// The menu item: Tools > SER Daemon > Set Up Selected VRChat Avatar.
using UnityEditor;
using UnityEngine;
using VRC.SDK3.Avatars.Components;

namespace SerDaemon.Bridge.VRChat
{
    static class SetupMenuItem
    {
        const string Item = "Tools/SER Daemon/Set Up Selected VRChat Avatar";

        [MenuItem(Item)]
        static void SetUpSelected()
        {
            var go = Selection.activeGameObject;
            var avatar = go != null ? go.GetComponent<VRCAvatarDescriptor>() : null;
            try
            {
                var result = VrchatFxSetup.Setup(avatar);
                Debug.Log(result.ToString(), avatar);
            }
            catch (VrchatFxSetup.SetupException e)
            {
                Debug.LogError("SER Daemon VRChat setup: " + e.Message, avatar);
            }
        }

        [MenuItem(Item, true)]
        static bool CanSetUp()
        {
            var go = Selection.activeGameObject;
            return go != null && go.GetComponent<VRCAvatarDescriptor>() != null;
        }
    }
}
