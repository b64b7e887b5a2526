// The drivers' shaping settings (deadzone, gain, normalisation, dominant-only, IsBinary threshold), one Inspector block.
using System;
using UnityEngine;

namespace SerDaemon.Bridge
{
    /// <summary>
    /// How a driver shapes the daemon's values before smoothing (see BlendshapeMapper and the README,
    /// "Faces on real avatars"). One serializable block shared by every driver.
    /// </summary>
    [Serializable]
    public sealed class FaceShaping
    {
        /// <summary>
        /// At rest the daemon sends 0.003-0.06 for the emotions it does not hear (its own smoothing never
        /// reaches 0); 0.1 writes those as exactly 0, so UniVRM's block overrides leave blink and lip sync alone.
        /// </summary>
        public const float DefaultDeadzone = 0.1f;
        /// <summary>An IsBinary expression switches on at this value (after deadzone and gain) while it leads.</summary>
        public const float DefaultBinaryThreshold = 0.1f;

        [Range(0f, 0.5f)]
        [Tooltip("Values at or below this are written as exactly 0 (the rest is stretched back to 0..1). The daemon's values are never exactly 0 at rest; UniVRM's 'block' overrides treat any weight above 0 as showing and would switch blink or lip sync off.")]
        public float deadzone = DefaultDeadzone;
        [Range(0f, 10f)]
        [Tooltip("Multiplies the values after the deadzone (clamped to 1). The daemon's weights for a clear emotion are often 0.2-0.4.")]
        public float gain = 1f;
        [Tooltip("Scale the emotions (every target but neutral) so the strongest one reaches full weight.")]
        public bool normalizeToPeak = false;
        [Tooltip("Show only the strongest emotion (neutral aside); the others stay at 0.")]
        public bool dominantOnly = false;
        [Range(0.01f, 1f)]
        [Tooltip("IsBinary expressions (shown fully or not at all, VRM drivers): on while they lead the emotions and reach this value (after deadzone and gain), off below half of it.")]
        public float binaryThreshold = DefaultBinaryThreshold;

        public void ApplyTo(BlendshapeMapper mapper)
        {
            mapper.Deadzone = deadzone;
            mapper.Gain = gain;
            mapper.NormalizeToPeak = normalizeToPeak;
            mapper.DominantOnly = dominantOnly;
            mapper.BinaryThreshold = binaryThreshold;
        }
    }
}
