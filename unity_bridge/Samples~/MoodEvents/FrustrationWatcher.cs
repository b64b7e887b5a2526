// Sample: an app's client for ser-daemon's mood events (--mood) that reacts to "frustration_rising" (plain C#).
using System;

namespace SerDaemon.Bridge.Samples
{
    /// <summary>
    /// Connects to the daemon's WebSocket (run it with --mood), and on each Poll() (from Update(), or any
    /// one thread) decodes what arrived: states keep the face's per-stream EmotionStates current (States),
    /// mood events are handed to EventReceived, and "frustration_rising" also to FrustrationRising, with
    /// the evidence the daemon sent (minute valence now and before, arousal, the share of each emotion),
    /// so the app can log why it acted. Decoding allocates nothing in the steady state; the MoodEvent handed
    /// over is reused by the decoder, so Clone() it to keep it past the handler.
    /// </summary>
    public sealed class FrustrationWatcher : IDisposable
    {
        readonly WebSocketStateClient client;
        readonly WsStateDecoder decoder = new WsStateDecoder();

        /// <summary>Every mood event (frustration_rising, disengaging, delighted, recovered).</summary>
        public event Action<MoodEvent> EventReceived;
        /// <summary>A user's frustration is rising: offer help, change the pace, log the evidence.</summary>
        public event Action<MoodEvent> FrustrationRising;

        /// <summary>The per-stream states (the latest emotion of each speaker).</summary>
        public StreamStates States { get { return decoder.Streams; } }
        public WebSocketStateClient Client { get { return client; } }
        /// <summary>True once a stream's final state arrived (the daemon's input ended).</summary>
        public bool SawFinalState { get; private set; }

        /// <param name="url">the daemon's WebSocket, ws://127.0.0.1:8765/ by default.</param>
        /// <param name="token">its --ws-token, if it has one.</param>
        public FrustrationWatcher(string url = "ws://127.0.0.1:8765/", string token = null)
        {
            client = new WebSocketStateClient(url, token);
        }

        public void Start() { client.Start(); }

        /// <summary>Decode up to <paramref name="max"/> waiting messages and raise the events; returns how many events fired.</summary>
        public int Poll(double now = 0, int max = 256)
        {
            decoder.Now = now;
            int fired = 0;
            for (int n = 0; n < max && client.TryDequeue(decoder); n++)
            {
                if (decoder.LastState != null && decoder.LastState.Final) SawFinalState = true;
                if (decoder.LastType != "event") continue;
                var e = decoder.LastEvent;
                fired++;
                var any = EventReceived;
                if (any != null) any(e);
                var frustration = FrustrationRising;
                if (frustration != null && e.Is(MoodEvent.FrustrationRising)) frustration(e);
            }
            return fired;
        }

        public void Dispose() { client.Dispose(); }
    }
}
