// Bytes allocated per OSC bundle and per WebSocket state on the bridge's receive paths, under Mono
// (GC.GetAllocatedBytesForCurrentThread: exact, per thread). The payload is a real daemon state from a
// recorded state stream (JSONL, e.g. Samples~/BasicAvatar/demo_states.jsonl); the OSC bundle is the
// daemon's generic scheme for the same state (state, 8 emotions, voice, seq, 6 vrm, 52 arkit).
//
//   mono Probe.exe --alloc STATES.jsonl
//
// Prints "ALLOC osc_receive_thread_per_bundle=N", "ALLOC osc_main_thread_per_bundle=N",
// "ALLOC ws_decode_per_state=N" (bytes) and "ALLOC osc_dispose_ms=X ws_dispose_ms=Y".
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Text;
using System.Threading;
using SerDaemon.Bridge;

static class AllocBench
{
    public static byte[] Bundle(EmotionState s)
    {
        var el = new List<byte[]>();
        el.Add(OscWriter.Message("/ser/state", s.Label, s.Confidence));
        foreach (var kv in s.Values("probs")) el.Add(OscWriter.Message("/ser/emotion/" + kv.Key, kv.Value));
        el.Add(OscWriter.Message("/ser/voice", s.Voice ? 1 : 0));
        el.Add(OscWriter.Message("/ser/seq", (int)s.Seq));
        foreach (var kv in s.Values("vrm")) el.Add(OscWriter.Message("/ser/vrm/" + kv.Key, kv.Value));
        foreach (var kv in s.Values("arkit")) el.Add(OscWriter.Message("/ser/arkit/" + kv.Key, kv.Value));
        return OscWriter.Bundle(el.ToArray());
    }

    static long Now() { return GC.GetAllocatedBytesForCurrentThread(); }

    public static int Run(string jsonl, Action<string> output)
    {
        // The 21st line when it is a state with weights (the line the "before" figures were measured on), else the first such.
        string json = null;
        var lines = File.ReadAllLines(jsonl);
        Func<string, bool> usable = l => l.Contains("\"type\":\"state\"") && l.Contains("\"arkit\"");
        if (lines.Length > 20 && usable(lines[20])) json = lines[20];
        else foreach (var line in lines) if (usable(line)) { json = line; break; }
        if (json == null) { output("ALLOC no state with weights in " + jsonl); return 2; }
        WsMessage m; string err;
        WsMessage.TryDecode(json, out m, out err);
        var bundle = Bundle(m.State);
        var utf8 = Encoding.UTF8.GetBytes(json);
        const int N = 2000;
        output("ALLOC bundle_bytes=" + bundle.Length + " json_bytes=" + utf8.Length + " iterations=" + N);

        // WebSocket: what the main thread does per state (the receive task only copies bytes into the queue).
        var dec = new WsStateDecoder();
        for (int i = 0; i < 200; i++) dec.Decode(utf8, utf8.Length);
        long a0 = Now();
        for (int i = 0; i < N; i++) dec.Decode(utf8, utf8.Length);
        output("ALLOC ws_decode_per_state=" + (Now() - a0) / N);

        // OSC, receive thread: the receiver's per-datagram step (check-parse and queue), run on this thread
        // through the real socket so the socket's own allocations count too.
        var rx = new OscReceiver(0);
        var tx = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        var own = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        own.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        EndPoint ownEp = own.LocalEndPoint;
        var accept = typeof(OscReceiver).GetMethod("Accept", BindingFlags.NonPublic | BindingFlags.Instance);
        var buffer = new byte[65536];
        var args = new object[] { buffer, 0 };
        var packet = new OscPacket();
        var decoder = new OscStateDecoder();
        long recv = 0, main = 0;
        for (int i = 0; i < N + 200; i++)
        {
            tx.SendTo(bundle, ownEp);
            long r0 = Now();
            SocketError code;
            int n = own.Receive(buffer, 0, buffer.Length, SocketFlags.None, out code);
            args[1] = n;
            accept.Invoke(rx, args);
            long r1 = Now();
            // Main thread: dequeue, parse into the reused packet, fold into the per-stream state.
            long m0 = Now();
            while (rx.TryDequeue(packet)) decoder.Apply(packet);
            long m1 = Now();
            if (i >= 200) { recv += r1 - r0; main += m1 - m0; }
        }
        // Reflection's Invoke allocates on its own (boxing the int, the call frame): measure it empty and subtract.
        var noop = typeof(AllocBench).GetMethod("Noop", BindingFlags.NonPublic | BindingFlags.Static);
        long i0 = Now();
        for (int i = 0; i < N; i++) { args[1] = i; noop.Invoke(null, args); }
        long invoke = (Now() - i0) / N;
        output("ALLOC osc_receive_thread_per_bundle=" + Math.Max(0, recv / N - invoke) + " (measured " + recv / N + " minus reflection overhead " + invoke + ")");
        output("ALLOC osc_main_thread_per_bundle=" + main / N + " frames=" + decoder.Frames);

        var t = Stopwatch.StartNew();
        rx.Dispose();
        double oscMs = t.Elapsed.TotalMilliseconds;
        var ws = new WebSocketStateClient("ws://127.0.0.1:" + ((IPEndPoint)own.LocalEndPoint).Port + "/");
        ws.Start();
        Thread.Sleep(100);
        t.Restart();
        ws.Dispose();
        output("ALLOC osc_dispose_ms=" + oscMs.ToString("F2", System.Globalization.CultureInfo.InvariantCulture) +
               " ws_dispose_ms=" + t.Elapsed.TotalMilliseconds.ToString("F2", System.Globalization.CultureInfo.InvariantCulture));
        tx.Close();
        own.Close();
        return 0;
    }

    static void Noop(byte[] b, int n) { }
}
