// Sample: offers help on screen when ser-daemon says a user's frustration is rising (run it with --mood).
using System;
using UnityEngine;
using UnityEngine.Events;

namespace SerDaemon.Bridge.Samples
{
    [AddComponentMenu("SER Daemon/Samples/Offer Help On Frustration")]
    public sealed class OfferHelpOnFrustration : MonoBehaviour
    {
        [Tooltip("The daemon's WebSocket (ser-daemon --mood; --ws-token below if it has one).")]
        public string url = "ws://127.0.0.1:8765/";
        public string token = "";
        [Tooltip("How long the offer stays on screen, in seconds.")]
        public float showSeconds = 10f;

        /// <summary>A UnityEvent with the stream id of a user whose frustration is rising (wire it in the Inspector).</summary>
        [Serializable] public sealed class StreamEvent : UnityEvent<string> { }
        [Tooltip("When a user's frustration is rising: e.g. open a help panel, slow the game down.")]
        public StreamEvent onFrustrationRising = new StreamEvent();

        FrustrationWatcher watcher;
        string offer = "";
        float offerUntil = float.NegativeInfinity;

        /// <summary>The text drawn: the offer while it shows, else "".</summary>
        public string Offer { get { return Time.unscaledTime < offerUntil ? offer : ""; } }

        void OnEnable()
        {
            watcher = new FrustrationWatcher(url, string.IsNullOrEmpty(token) ? null : token);
            watcher.EventReceived += e => Debug.Log("ser-daemon mood event: " + e, this);
            watcher.FrustrationRising += OnFrustrationRising;
            watcher.Start();
        }

        void OnDisable()
        {
            if (watcher != null) watcher.Dispose();
            watcher = null;
        }

        void Update()
        {
            if (watcher != null) watcher.Poll(Time.unscaledTime);
        }

        void OnFrustrationRising(MoodEvent e)
        {
            // The evidence says why: the last minute's valence fell (before -> now) with high arousal.
            offer = "Need a hand? (" + e.Stream + ": valence " + e.Figure("valence_minute_before").ToString("+0.00;-0.00") +
                    " -> " + e.Figure("valence_minute").ToString("+0.00;-0.00") + " over the last minute)";
            offerUntil = Time.unscaledTime + showSeconds;
            try { onFrustrationRising.Invoke(e.Stream); }
            catch (Exception ex) { Debug.LogException(ex, this); }
        }

        void OnGUI()
        {
            var text = Offer;
            if (text.Length > 0) GUI.Label(new Rect(20, 20, 600, 60), text);
        }
    }
}
