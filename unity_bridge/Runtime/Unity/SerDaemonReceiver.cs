// Receives ser-daemon's emotion state in Unity, over OSC (UDP) or WebSocket.
using System;
using System.Collections.Generic;
using UnityEngine;

namespace SerDaemon.Bridge
{
    /// <summary>
    /// Listens for ser-daemon (OSC: the generic /ser/* scheme or VMC /VMC/Ext/Blend/*; or WebSocket JSON)
    /// on a background thread and applies what arrived on the main thread in Update. Read State, or
    /// subscribe to StateChanged (raised on the main thread, at most once per frame).
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
        [Tooltip("UDP port to listen on: the port given to ser-daemon's --osc (9000 by default; 39539 for --osc-profile vmc).")]
        public int oscPort = 9000;
        [Tooltip("Listen on every network interface instead of this machine only (127.0.0.1).")]
        public bool listenOnAllInterfaces = false;

        [Header("WebSocket")]
        public string webSocketUrl = "ws://127.0.0.1:8765";
        [Tooltip("Only when the daemon runs with --ws-token.")]
        public string webSocketToken = "";

        [Header("Behaviour")]
        [Tooltip("With nothing received for this long, IsStale becomes true and drivers relax the face.")]
        public float staleAfterSeconds = 2f;
        [Tooltip("Most packets applied per frame (the rest wait for the next frame).")]
        public int maxPacketsPerFrame = 256;
        public bool logStates = false;

        /// <summary>Raised on the main thread when new data changed State this frame.</summary>
        public event Action<EmotionState> StateChanged;

        readonly OscStateDecoder decoder = new OscStateDecoder();
        readonly List<OscPacket> packets = new List<OscPacket>();
        OscReceiver osc;
        WebSocketStateClient ws;
        float lastReceived = float.NegativeInfinity;
        long lastMalformed;

        /// <summary>The latest state (updated in Update; read it on the main thread).</summary>
        public EmotionState State { get { return decoder.State; } }
        /// <summary>The model's labels from the WebSocket hello (null over OSC).</summary>
        public string[] Labels { get; private set; }
        public bool IsStale { get { return Time.unscaledTime - lastReceived > staleAfterSeconds; } }
        public bool IsListening { get { return osc != null || ws != null; } }
        public long Frames { get { return decoder.Frames; } }

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
            try
            {
                if (transport == Transport.Osc)
                {
                    osc = new OscReceiver(oscPort, listenOnAllInterfaces ? "0.0.0.0" : "127.0.0.1");
                }
                else
                {
                    ws = new WebSocketStateClient(webSocketUrl, string.IsNullOrEmpty(webSocketToken) ? null : webSocketToken);
                    ws.Start();
                }
            }
            catch (Exception e)
            {
                Debug.LogError("SerDaemonReceiver: cannot open " + transport + ": " + e.Message, this);
                Close();
            }
        }

        void Close()
        {
            if (osc != null) { osc.Dispose(); osc = null; }
            if (ws != null) { ws.Dispose(); ws = null; }
        }

        void Update()
        {
            bool changed = false;
            if (osc != null)
            {
                packets.Clear();
                osc.Drain(packets, Math.Max(1, maxPacketsPerFrame));
                for (int i = 0; i < packets.Count; i++) if (decoder.Apply(packets[i]) > 0) changed = true;
                if (osc.PacketsMalformed != lastMalformed)
                {
                    if (lastMalformed == 0) Debug.LogWarning("SerDaemonReceiver: skipped a malformed OSC packet (" + osc.LastError + ")", this);
                    lastMalformed = osc.PacketsMalformed;
                }
            }
            if (ws != null)
            {
                WsMessage m;
                int n = 0;
                while (n++ < Math.Max(1, maxPacketsPerFrame) && ws.TryDequeue(out m))
                {
                    if (m.Labels != null) Labels = m.Labels;
                    if (m.State != null) { decoder.State.CopyFrom(m.State); changed = true; }
                }
            }
            if (!changed) return;
            lastReceived = Time.unscaledTime;
            if (logStates) Debug.Log("SerDaemonReceiver: " + decoder.State, this);
            var handler = StateChanged;
            if (handler == null) return;
            try { handler(decoder.State); }
            catch (Exception e) { Debug.LogException(e, this); }
        }
    }
}
