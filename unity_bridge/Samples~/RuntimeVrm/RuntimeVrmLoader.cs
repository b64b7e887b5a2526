// Sample: load a VRM at run time with UniVRM and let the emotion driver follow the daemon on it.
// Compiled only with UniVRM's com.vrmc.vrm installed (see SerDaemon.Bridge.Samples.RuntimeVrm.asmdef).
using System.Threading.Tasks;
using UnityEngine;
using UniVRM10;

namespace SerDaemon.Bridge.Samples
{
    /// <summary>
    /// Loads a .vrm file (VRM 1.0, or 0.x migrated by UniVRM) with Vrm10.LoadPathAsync and adds a
    /// Vrm10EmotionDriver to it. Loading another file replaces the avatar: the new one gets its own driver
    /// and the old one is destroyed. A driver already in the scene notices a new or reloaded avatar by
    /// itself too (it rebinds when its Vrm10Instance or that instance's runtime changes).
    /// </summary>
    [AddComponentMenu("SER Daemon/Samples/Runtime VRM Loader")]
    public sealed class RuntimeVrmLoader : MonoBehaviour
    {
        [Tooltip("Path of a .vrm file (absolute, or relative to the project folder / the player's working folder).")]
        public string vrmPath = "";
        [Tooltip("The receiver the driver follows (found in the scene when left empty).")]
        public SerDaemonReceiver receiver;
        [Tooltip("Which daemon stream (speaker) the avatar follows.")]
        public string stream = StreamStates.First;
        [Tooltip("Show only the strongest emotion, at full weight: suits avatars whose emotions are IsBinary.")]
        public bool dominantAtFullWeight = true;

        /// <summary>The avatar loaded last, or null.</summary>
        public Vrm10Instance Loaded { get; private set; }
        /// <summary>Its driver, or null.</summary>
        public Vrm10EmotionDriver Driver { get; private set; }

        async void Start()
        {
            if (!string.IsNullOrEmpty(vrmPath)) await Load(vrmPath);
        }

        /// <summary>Load a .vrm file, attach the driver, destroy the previous avatar. Null (with an error logged) when loading failed.</summary>
        public async Task<Vrm10EmotionDriver> Load(string path)
        {
            Vrm10Instance instance;
            try { instance = await Vrm10.LoadPathAsync(path, canLoadVrm0X: true); }
            catch (System.Exception e)
            {
                Debug.LogError("RuntimeVrmLoader: cannot load '" + path + "': " + e.Message, this);
                return null;
            }
            if (instance == null) { Debug.LogError("RuntimeVrmLoader: cannot load '" + path + "'", this); return null; }
            var driver = instance.gameObject.AddComponent<Vrm10EmotionDriver>(); // Unity runs its OnEnable here
            driver.vrmInstance = instance;
            driver.stream = stream;
            if (receiver != null) driver.receiver = receiver;
            if (dominantAtFullWeight)
            {
                driver.shaping.dominantOnly = true;
                driver.shaping.normalizeToPeak = true;
            }
            if (Loaded != null) Destroy(Loaded.gameObject);
            Loaded = instance;
            Driver = driver;
            return driver;
        }
    }
}
