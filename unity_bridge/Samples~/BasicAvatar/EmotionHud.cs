// Sample: shows the followed stream's label, confidence and probabilities on screen (no assets needed).
using System.Text;
using UnityEngine;

namespace SerDaemon.Bridge.Samples
{
    [AddComponentMenu("SER Daemon/Samples/Emotion HUD")]
    public sealed class EmotionHud : MonoBehaviour
    {
        public SerDaemonReceiver receiver;
        [Tooltip("Which daemon stream to show: \"first\" or a stream id.")]
        public string stream = StreamStates.First;

        readonly StringBuilder text = new StringBuilder();
        long shownVersion = -1;
        string shown = "";

        /// <summary>The text drawn (rebuilt only when the state changes).</summary>
        public string Text { get { return shown; } }

        void Update()
        {
            if (receiver == null) receiver = SerDaemonScene.FindReceiver();
            var s = receiver != null ? receiver.GetState(stream) : null;
            if (s == null) { shown = "waiting for ser-daemon..."; shownVersion = -1; return; }
            if (s.Version == shownVersion) return;
            shownVersion = s.Version;
            text.Length = 0;
            text.Append(s.Label).Append(' ').Append((int)(s.Confidence * 100f + 0.5f)).Append('%');
            if (s.NoAudio) text.Append("  (no audio)");
            var probs = s.Values(EmotionState.SetProbs);
            if (probs != null)
                foreach (var kv in probs) text.Append('\n').Append(kv.Key).Append(' ').Append('|', (int)(kv.Value * 40f));
            shown = text.ToString();
        }

        void OnGUI()
        {
            GUI.Label(new Rect(20, 20, 600, 400), shown);
        }
    }
}
