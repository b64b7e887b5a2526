// Ready-made bindings from the model's emotion labels to common avatar blendshape names (plain C#).
using System.Collections.Generic;

namespace SerDaemon.Bridge
{
    public static class DefaultBindings
    {
        /// <summary>
        /// Labels (neutral, calm, happy, sad, angry, fearful, disgust, surprised) to VRM 0.x-style clip
        /// names with a prefix: "" gives Joy/Angry/Sorrow/Fun/Surprised, "Fcl_ALL_" gives VRoid Studio's
        /// face blendshapes. Mixed emotions share clips with gains (fearful = half Sorrow + half Surprised).
        /// </summary>
        public static List<BlendshapeBinding> FromLabels(string prefix)
        {
            prefix = prefix ?? "";
            return new List<BlendshapeBinding>
            {
                new BlendshapeBinding("happy", prefix + "Joy"),
                new BlendshapeBinding("calm", prefix + "Fun", 0.6f),
                new BlendshapeBinding("angry", prefix + "Angry"),
                new BlendshapeBinding("disgust", prefix + "Angry", 0.6f),
                new BlendshapeBinding("sad", prefix + "Sorrow"),
                new BlendshapeBinding("fearful", prefix + "Sorrow", 0.5f),
                new BlendshapeBinding("fearful", prefix + "Surprised", 0.5f),
                new BlendshapeBinding("surprised", prefix + "Surprised"),
            };
        }
    }
}
