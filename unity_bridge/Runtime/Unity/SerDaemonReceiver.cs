// Receives ser-daemon's emotion states in Unity, over OSC (UDP) or WebSocket, one state per daemon stream.
using System;
using System.Diagnostics;
using UnityEngine;
using UnityEngine.Events;
using Debug = UnityEngine.Debug;

namespace SerDaemon.Bridge
{
    /// <summary>
    /// Listens for ser-daemon (OSC: the generic /ser/* scheme or VMC /VMC/Ext/Blend/*; or WebSocket JSON)
    /// on a background thread and applies what arrived on the main thread in Update, into one
    /// EmotionState per daemon stream (one per speaker). Drivers pick a stream with GetState("first") or
    /// GetState("mic"); scripts can also subscribe to StateChanged (main thread, once per changed stream
    /// per frame). Steady-state reception allocates nothing; OnDisable returns in about a millisecond.
    /// </summary>
    [AddComponentMenu("SER Daemon/SER Daemon Receiver")]
    [DisallowMultipleComponent]
    [DefaultExecutionOrder(-100)]
    public sealed class SerDaemonReceiver : MonoBehaviour
    {
        public enum Transport { Osc, WebSocket }

        [Tooltip("OSC: ser-daemon --osc 127.0.0.1:PORT (or --osc vmc@127.0.0.1:39539). WebSocket: ser-daemon --ws 127.0.0.1:8765.")]
        public Transport transport = Transport.Osc;

        [Header("OSC (UDP)")]
        [Tooltip("UDP port to listen on: the port given to ser-daemon's --osc (9000 by default; 39539 for --osc-profile vmc). Must not be in use by another program.")]
        public int oscPort = 9000;
        [Tooltip("Listen on every network interface instead of this machine only (127.0.0.1).")]
        public bool listenOnAllInterfaces = false;

        [Header("WebSocket")]
        public string webSocketUrl = "ws://127.0.0.1:8765";
        [Tooltip("Only when the daemon runs with --ws-token.")]
        public string webSocketToken = "";

        [Header("Behaviour")]
        [Tooltip("With nothing received from a stream for this long, it counts as stale and drivers relax the face.")]
        public float staleAfterSeconds = 2f;
        [Tooltip("Most packets or messages applied per frame (the rest wait for the next frame).")]
        public int maxPacketsPerFrame = 256;
        [Tooltip("Bound of the queue between the receive thread and the main thread, in bytes (the oldest go first).")]
        public int maxQueuedBytes = 256 * 1024;
        public bool logStates = false;

        /// <summary>Raised on the main thread for each stream whose state changed this frame.</summary>
        public event Action<EmotionState> StateChanged;

        /// <summary>
        /// Raised on the main thread for each mood event (ser-daemon --mood: frustration_rising, disengaging,
        /// delighted, recovered), as it is dequeued, before the frame's StateChanged. WebSocket transport
        /// only. The MoodEvent is reused by the decoder: Clone() it to keep it.
        /// </summary>
        public event Action<MoodEvent> MoodEventReceived;

        /// <summary>A UnityEvent with the changed stream's state (wire it in the Inspector).</summary>
        [Serializable] public sealed class StateEvent : UnityEvent<EmotionState> { }
        /// <summary>A UnityEvent with a label ("happy", "neutral", "unsure", ...).</summary>
        [Serializable] public sealed class LabelEvent : UnityEvent<string> { }
        /// <summary>A UnityEvent with a mood event (its Kind, Stream, Time and evidence).</summary>
        [Serializable] public sealed class MoodEventEvent : UnityEvent<MoodEvent> { }

        [Header("Events (Inspector hooks)")]
        [Tooltip("Each frame, once per stream whose state changed (main thread), like the StateChanged C# event.")]
        public StateEvent onStateChanged = new StateEvent();
        [Tooltip("When the label of the first stream (the daemon's first, or the first heard) changes: e.g. play a sound or switch an animation on \"angry\".")]
        public LabelEvent onLabelChanged = new LabelEvent();
        [Tooltip("For each mood event of ser-daemon --mood (WebSocket only), like the MoodEventReceived C# event: e.g. offer help on \"frustration_rising\".")]
        public MoodEventEvent onMoodEvent = new MoodEventEvent();
        string lastLabel;

        readonly StreamStates streams = new StreamStates();
        readonly OscPacket packet = new OscPacket();
        OscStateDecoder oscDecoder;
        WsStateDecoder wsDecoder;
        readonly long[] seenVersions = new long[StreamStates.MaxStreams];
        OscReceiver osc;
        WebSocketStateClient ws;
        float lastReceived = float.NegativeInfinity;
        long lastMalformed;

        /// <summary>Every stream heard so far, in the order they were first heard.</summary>
        public StreamStates Streams { get { return streams; } }

        /// <summary>The first stream's state (see GetState); an empty state before anything arrived.</summary>
        public EmotionState State { get { return GetState(StreamStates.First) ?? Empty; } }
        static readonly EmotionState Empty = new EmotionState();

        /// <summary>
        /// The state of one stream: "first" (or empty) for the daemon's first stream, else a stream id
        /// ("mic", a file stem, an ingest client's name). Null while that stream has not been heard.
        /// </summary>
        public EmotionState GetState(string stream) { return streams.Select(stream); }

        /// <summary>The model's labels from the WebSocket hello (null over OSC).</summary>
        public string[] Labels { get { return wsDecoder != null ? wsDecoder.Labels : null; } }
        /// <summary>True when nothing at all arrived for staleAfterSeconds.</summary>
        public bool IsStale { get { return Time.unscaledTime - lastReceived > staleAfterSeconds; } }
        public bool IsListening { get { return osc != null || ws != null; } }
        /// <summary>The UDP port actually listened on (useful with oscPort 0), or 0.</summary>
        public int ListeningPort { get { return osc != null ? osc.Port : 0; } }
        public long Frames { get { return oscDecoder != null ? oscDecoder.Frames : 0; } }
        /// <summary>How long the last OnDisable/Close took, milliseconds (it must never stall a frame).</summary>
        public double LastCloseMilliseconds { get; private set; }
        /// <summary>Why the transport could not open (e.g. the UDP port is in use), or null.</summary>
        public string OpenError { get; private set; }
        /// <summary>Tries to open the transport since the last OnEnable/Reconnect (1 when it opened at once).</summary>
        public int OpenAttempts { get; private set; }
        /// <summary>Seconds until the next try while the transport could not open (back-off 1, 2, 4 ... 30 s), else -1.</summary>
        public float NextRetryInSeconds { get { return IsListening || retryAt < 0f ? -1f : Math.Max(0f, retryAt - Time.unscaledTime); } }

        /// <summary>Longest wait between two tries to open a port that is in use.</summary>
        public const float MaxRetrySeconds = 30f;
        float retryAt = -1f, retryDelay;

        /// <summary>True when this stream's state is older than staleAfterSeconds (or null).</summary>
        public bool IsStateStale(EmotionState state)
        {
            return state == null || Time.unscaledTime - state.UpdatedAt > staleAfterSeconds;
        }

        void OnEnable() { Open(); }

        void OnDisable() { Close(); }

        void OnApplicationQuit() { Close(); }

        /// <summary>Close and reopen with the current settings (after changing port or URL at run time).</summary>
        public void Reconnect()
        {
            Close();
            Open();
        }

        void Open()
        {
            OpenError = null;
            OpenAttempts = 0;
            lastLabel = null;
            retryAt = -1f;
            retryDelay = 0f;
            streams.Clear();
            oscDecoder = new OscStateDecoder(streams);
            wsDecoder = new WsStateDecoder(streams);
            for (int i = 0; i < seenVersions.Length; i++) seenVersions[i] = 0;
            TryOpen();
        }

        /// <summary>
        /// One try at opening the transport. A failure (a port in use: VRChat, another receiver that may
        /// close soon) is logged once and tried again with back-off (1, 2, 4 ... 30 s) from Update.
        /// </summary>
        void TryOpen()
        {
            OpenAttempts++;
            try
            {
                if (transport == Transport.Osc)
                {
                    osc = new OscReceiver(oscPort, listenOnAllInterfaces ? "0.0.0.0" : "127.0.0.1", Math.Max(4096, maxQueuedBytes));
                }
                else
                {
                    ws = new WebSocketStateClient(webSocketUrl, string.IsNullOrEmpty(webSocketToken) ? null : webSocketToken,
                        Math.Max(4096, maxQueuedBytes));
                    ws.Start();
                }
            }
            catch (Exception e)
            {
                // Loud, once: a port already in use must not look like "no data".
                if (OpenError == null)
                    Debug.LogError("SerDaemonReceiver: cannot open " + transport + ": " + e.Message + " (trying again with back-off, up to every " + MaxRetrySeconds + " s)", this);
                OpenError = e.Message;
                Close();
                retryDelay = retryDelay <= 0f ? 1f : Math.Min(MaxRetrySeconds, retryDelay * 2f);
                retryAt = Time.unscaledTime + retryDelay;
                return;
            }
            if (OpenError != null) Debug.Log("SerDaemonReceiver: " + transport + " open after " + OpenAttempts + " tries", this);
            OpenError = null;
            retryAt = -1f;
        }

        void Close()
        {
            var t = Stopwatch.StartNew();
            if (osc != null) { osc.Dispose(); osc = null; }
            if (ws != null) { ws.Dispose(); ws = null; }
            LastCloseMilliseconds = t.Elapsed.TotalMilliseconds;
        }

        /// <summary>The C# event, then the UnityEvent; a listener's exception is logged, never stops the others.</summary>
        void Raise<T>(Action<T> handler, UnityEvent<T> unityEvent, T value)
        {
            if (handler != null)
            {
                try { handler(value); }
                catch (Exception ex) { Debug.LogException(ex, this); }
            }
            if (unityEvent != null)
            {
                try { unityEvent.Invoke(value); }
                catch (Exception ex) { Debug.LogException(ex, this); }
            }
        }

        void Update()
        {
            if (retryAt >= 0f && !IsListening && Time.unscaledTime >= retryAt) TryOpen();
            int max = Math.Max(1, maxPacketsPerFrame);
            bool any = false;
            double now = Time.unscaledTime;
            if (osc != null)
            {
                oscDecoder.Now = now;
                for (int n = 0; n < max && osc.TryDequeue(packet); n++)
                    if (oscDecoder.Apply(packet) > 0) any = true;
                if (osc.PacketsMalformed != lastMalformed)
                {
                    if (lastMalformed == 0) Debug.LogWarning("SerDaemonReceiver: skipped a malformed OSC packet (" + osc.LastError + ")", this);
                    lastMalformed = osc.PacketsMalformed;
                }
            }
            if (ws != null)
            {
                wsDecoder.Now = now;
                for (int n = 0; n < max && ws.TryDequeue(wsDecoder); n++)
                {
                    if (wsDecoder.LastState != null) any = true;
                    else if (wsDecoder.LastType == "event") Raise(MoodEventReceived, onMoodEvent, wsDecoder.LastEvent);
                }
            }
            if (!any) return;
            lastReceived = Time.unscaledTime;
            for (int i = 0; i < streams.Count; i++)
            {
                var s = streams[i];
                if (s.Version == seenVersions[i]) continue;
                seenVersions[i] = s.Version;
                if (logStates) Debug.Log("SerDaemonReceiver: " + (s.Stream.Length > 0 ? s.Stream + " " : "") + s, this);
                Raise(StateChanged, onStateChanged, s);
            }
            var first = State;
            if (onLabelChanged != null && first.Version > 0 && !string.Equals(first.Label, lastLabel, StringComparison.Ordinal))
            {
                lastLabel = first.Label;
                try { onLabelChanged.Invoke(first.Label); }
                catch (Exception e) { Debug.LogException(e, this); }
            }
        }
    }
}
