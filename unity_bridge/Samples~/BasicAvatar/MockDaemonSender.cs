// Sample: replays a recorded ser-daemon state stream (JSON Lines, one WebSocket message per line) as the
// daemon's generic OSC bundles to a SerDaemonReceiver on this machine, at the recorded pace, so the
// scene works without the daemon. Record your own with any WebSocket client, e.g.
//   python -m websockets ws://127.0.0.1:8765 > my_states.txt     (then press Ctrl-C)
using System;
using System.Collections.Generic;
using System.IO;
using System.Net;
using System.Net.Sockets;
using UnityEngine;

namespace SerDaemon.Bridge.Samples
{
    [AddComponentMenu("SER Daemon/Samples/Mock Daemon Sender")]
    public sealed class MockDaemonSender : MonoBehaviour
    {
        [Tooltip("A recorded state stream: JSON Lines of the daemon's WebSocket messages (DemoStates.txt).")]
        public TextAsset recording;
        [Tooltip("Or a file path (absolute, or relative to the project folder); used when set.")]
        public string recordingPath = "";
        [Tooltip("UDP port of the receiver (its Osc Port).")]
        public int port = 9010;
        public bool loop = true;
        [Range(0.1f, 4f)] public float speed = 1f;

        struct Frame { public double At; public byte[] Bundle; }

        readonly List<Frame> frames = new List<Frame>();
        Socket socket;
        EndPoint target;
        double clock;
        int next;

        /// <summary>How many bundles were sent (for the sample's tests).</summary>
        public int Sent { get; private set; }
        public int Loaded { get { return frames.Count; } }

        void OnEnable()
        {
            frames.Clear();
            string text = !string.IsNullOrEmpty(recordingPath) ? File.ReadAllText(recordingPath) : (recording != null ? recording.text : "");
            Load(text, frames);
            if (frames.Count == 0) { Debug.LogWarning("MockDaemonSender: no states in the recording", this); return; }
            socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            target = new IPEndPoint(IPAddress.Loopback, port);
            clock = 0;
            next = 0;
        }

        void OnDisable()
        {
            if (socket != null) { socket.Close(); socket = null; }
        }

        void Update()
        {
            if (socket == null || frames.Count == 0) return;
            clock += Time.unscaledDeltaTime * speed;
            while (next < frames.Count && frames[next].At <= clock)
            {
                socket.SendTo(frames[next].Bundle, target);
                Sent++;
                next++;
            }
            if (next >= frames.Count && loop) { next = 0; clock = 0; }
        }

        /// <summary>Each "state" line as the daemon's generic OSC bundle, timed by its emitted_time.</summary>
        static void Load(string text, List<Frame> into)
        {
            double first = double.NaN;
            foreach (var raw in text.Split('\n'))
            {
                var line = raw.Trim();
                if (line.Length == 0) continue;
                object json;
                string error;
                if (!MiniJson.TryParse(line, out json, out error) || MiniJson.Str(json, "type") != "state") continue;
                double at = MiniJson.Num(json, "emitted_time", double.NaN);
                if (double.IsNaN(at)) at = into.Count * 0.25;
                if (double.IsNaN(first)) first = at;
                var msgs = new List<byte[]>
                {
                    OscWriter.Message("/ser/state", MiniJson.Str(json, "label", "neutral"), (float)MiniJson.Num(json, "confidence")),
                };
                var probs = MiniJson.Obj(json, "probs");
                if (probs != null) foreach (var kv in probs) if (kv.Value is double) msgs.Add(OscWriter.Message("/ser/emotion/" + kv.Key, (float)(double)kv.Value));
                msgs.Add(OscWriter.Message("/ser/voice", MiniJson.Bool(json, "voice") ? 1 : 0));
                msgs.Add(OscWriter.Message("/ser/seq", (int)MiniJson.Num(json, "seq")));
                var weights = MiniJson.Obj(json, "weights");
                foreach (var set in new[] { "vrm", "vrm0", "arkit" }) // as the daemon sends them over generic OSC
                {
                    var w = MiniJson.Obj(weights, set);
                    if (w != null) foreach (var kv in w) if (kv.Value is double) msgs.Add(OscWriter.Message("/ser/" + set + "/" + kv.Key, (float)(double)kv.Value));
                }
                into.Add(new Frame { At = at - first, Bundle = OscWriter.Bundle(msgs.ToArray()) });
            }
        }
    }
}
