// Console probe for CI: runs the bridge's Core classes outside Unity (under Mono) and prints what
// they decode, one line per item, for tests to assert on.
//
//   mono Probe.exe --udp PORT [--ws URL] [--count N] [--seconds T]
//                  [--targets A,B,C] [--set probs|vrm|vrm0|arkit|vmc|weights] [--bind src=dst[*gain],...]
//                  [--passthrough] [--smoothing S] [--scale X]
//   mono Probe.exe --ws URL --mood [--seconds T]  (the MoodEvents sample's FrustrationWatcher; a daemon with --mood)
//   mono Probe.exe --selftest          (the NUnit-style tests of Tests/Runtime, via TestRunner.cs)
//   mono Probe.exe --alloc STATES.jsonl (bytes allocated per OSC bundle and per WebSocket state)
//
// Lines: "READY udp=PORT", "OSC <address> <args>" per decoded message (e.g. OSC /ser/state s:happy f:0.7100),
// "MALFORMED total=N <reason>", "WS connected", "WS hello labels=a,b", "WS state seq=.. label=.. conf=..
// voice=.. final=..", "WS probs a:0.1000 ...", "WS weights <set> a:0.1000 ...", "WEIGHT <name> <value>" for
// blendshape weights (0..scale) written by the mapper on a fake mesh with --targets, "MISSING <name>",
// and at the end "DONE osc=N ws=M malformed=K". A message to /probe/quit ends it.
// With --mood: "MOOD event <kind> stream=.. time=.. <evidence name=value ...>" per mood event, "MOOD help
// stream=.. valence_minute=.. before=.." per frustration_rising, and "DONE mood events=N help=M" once the
// daemon closed the connection after a final state (or at --seconds).
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Threading;
using SerDaemon.Bridge;
using SerDaemon.Bridge.Samples;

static class Probe
{
    sealed class FakeMesh : IBlendshapeSink
    {
        public readonly List<string> Names = new List<string>();
        public readonly Dictionary<int, float> Weights = new Dictionary<int, float>();
        public bool Print = true;
        public int Writes;
        public int GetIndex(string name) { return Names.IndexOf(name); }
        public int Count { get { return Names.Count; } }
        public string GetName(int i) { return Names[i]; }

        public void SetWeight(int i, float w)
        {
            Weights[i] = w;
            Writes++;
            if (Print) Out("WEIGHT " + Names[i] + " " + F(w, "F2"));
        }
    }

    static readonly object OutLock = new object();

    static void Out(string line)
    {
        lock (OutLock) { Console.Out.WriteLine(line); Console.Out.Flush(); }
    }

    static string F(float v, string fmt) { return v.ToString(fmt, CultureInfo.InvariantCulture); }

    static int Main(string[] args)
    {
        try { return Run(args); }
        catch (Exception e) { Out("FATAL " + e); return 3; }
    }

    static int Run(string[] args)
    {
        int udp = -1, count = 100000;
        double seconds = 20;
        string ws = null, set = EmotionState.SetProbs;
        string targets = null, bind = null;
        bool passthrough = false, mood = false;
        float smoothing = 0f, scale = 100f;
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            Func<string> next = () => { if (i + 1 >= args.Length) throw new ArgumentException(a + " needs a value"); return args[++i]; };
            switch (a)
            {
                case "--selftest": return TestRunner.Run(Out);
                case "--alloc": return AllocBench.Run(next(), Out);
                case "--udp": udp = int.Parse(next(), CultureInfo.InvariantCulture); break;
                case "--ws": ws = next(); break;
                case "--count": count = int.Parse(next(), CultureInfo.InvariantCulture); break;
                case "--seconds": seconds = double.Parse(next(), CultureInfo.InvariantCulture); break;
                case "--targets": targets = next(); break;
                case "--set": set = next(); break;
                case "--bind": bind = next(); break;
                case "--passthrough": passthrough = true; break;
                case "--mood": mood = true; break;
                case "--smoothing": smoothing = float.Parse(next(), CultureInfo.InvariantCulture); break;
                case "--scale": scale = float.Parse(next(), CultureInfo.InvariantCulture); break;
                default: Out("usage error: unknown argument " + a); return 2;
            }
        }
        if (udp < 0 && ws == null) { Out("usage error: give --udp PORT and/or --ws URL, or --selftest"); return 2; }
        if (mood) return ws == null ? Usage("--mood needs --ws URL") : RunMood(ws, seconds);

        BlendshapeMapper mapper = null;
        if (targets != null)
        {
            var mesh = new FakeMesh();
            mesh.Names.AddRange(targets.Split(new[] { ',' }, StringSplitOptions.RemoveEmptyEntries));
            mapper = new BlendshapeMapper(mesh) { SmoothingSeconds = smoothing, WeightScale = scale, PassThrough = passthrough };
            mapper.MissingName = n => Out("MISSING " + n);
            mapper.Error = e => Out("MAPPER-ERROR " + e);
            if (bind != null)
            {
                foreach (var b in bind.Split(new[] { ',' }, StringSplitOptions.RemoveEmptyEntries))
                {
                    var kv = b.Split('=');
                    var dst = kv[1].Split('*');
                    float gain = dst.Length > 1 ? float.Parse(dst[1], CultureInfo.InvariantCulture) : 1f;
                    mapper.Bindings.Add(new BlendshapeBinding(kv[0], dst[0], gain));
                }
            }
        }

        OscReceiver osc = null;
        WebSocketStateClient client = null;
        var decoder = new OscStateDecoder();
        int nOsc = 0, nWs = 0;
        long malformedSeen = 0;
        bool quit = false;
        var clock = Stopwatch.StartNew();
        try
        {
            if (udp >= 0)
            {
                osc = new OscReceiver(udp);
                Out("READY udp=" + osc.Port);
            }
            if (ws != null)
            {
                client = new WebSocketStateClient(ws) { ReconnectDelayMs = 200 };
                client.Start();
                Out("READY ws=" + ws);
            }
            bool wsConnected = false;
            var packets = new List<OscPacket>();
            while (!quit && nOsc + nWs < count && clock.Elapsed.TotalSeconds < seconds)
            {
                bool idle = true;
                if (osc != null)
                {
                    packets.Clear();
                    osc.Drain(packets, 64);
                    foreach (var p in packets)
                    {
                        idle = false;
                        long framesBefore = decoder.Frames;
                        foreach (var m in p.Messages)
                        {
                            Out("OSC " + m);
                            nOsc++;
                            if (m.Address == "/probe/quit") quit = true;
                            decoder.Apply(m);
                        }
                        if (mapper != null && decoder.Frames != framesBefore)
                        {
                            mapper.SetSources(decoder.State.Values(set));
                            mapper.Update(1f / 60f);
                        }
                    }
                    if (osc.PacketsMalformed != malformedSeen)
                    {
                        malformedSeen = osc.PacketsMalformed;
                        Out("MALFORMED total=" + malformedSeen + " " + osc.LastError);
                    }
                }
                if (client != null)
                {
                    if (client.IsConnected && !wsConnected) { wsConnected = true; Out("WS connected"); }
                    WsMessage m;
                    while (client.TryDequeue(out m))
                    {
                        idle = false;
                        nWs++;
                        if (m.Type == "hello") Out("WS hello labels=" + string.Join(",", m.Labels ?? new string[0]));
                        else if (m.State == null) Out("WS " + m.Type);
                        else
                        {
                            var s = m.State;
                            Out("WS state " + s);
                            Out("WS probs " + Join(s.Values(EmotionState.SetProbs)));
                            foreach (var kv in s.Sets)
                                if (kv.Key != EmotionState.SetProbs) Out("WS weights " + kv.Key + " " + Join(kv.Value));
                            if (mapper != null)
                            {
                                mapper.SetSources(s.Values(set));
                                mapper.Update(1f / 60f);
                            }
                            if (s.Final) quit = true;
                        }
                    }
                }
                if (idle) Thread.Sleep(5);
            }
        }
        finally
        {
            var t = Stopwatch.StartNew();
            if (osc != null) osc.Dispose();
            if (client != null) client.Dispose();
            Out("DONE osc=" + nOsc + " ws=" + nWs + " malformed=" + malformedSeen +
                (client != null && client.LastError != null ? " ws_error=" + client.LastError.Replace(' ', '_') : "") +
                " dispose_ms=" + t.ElapsedMilliseconds);
        }
        return 0;
    }

    static int Usage(string why) { Out("usage error: " + why); return 2; }

    /// <summary>The MoodEvents sample's client as an app would run it: poll, react to frustration_rising.</summary>
    static int RunMood(string url, double seconds)
    {
        int events = 0, helps = 0;
        var clock = Stopwatch.StartNew();
        using (var watcher = new FrustrationWatcher(url))
        {
            watcher.Client.ReconnectDelayMs = 200;
            watcher.EventReceived += e => { events++; Out("MOOD event " + e); };
            watcher.FrustrationRising += e =>
            {
                helps++;
                Out("MOOD help stream=" + e.Stream + " valence_minute=" + e.Figure("valence_minute").ToString("R", CultureInfo.InvariantCulture) +
                    " before=" + e.Figure("valence_minute_before").ToString("R", CultureInfo.InvariantCulture));
            };
            // Retry until the daemon's server is up (it waits for this client before it plays its input).
            watcher.Start();
            while (!watcher.Client.IsConnected && clock.Elapsed.TotalSeconds < seconds) Thread.Sleep(10);
            watcher.Client.AutoReconnect = false;
            Out("WS connected");
            // Mood and events follow their state, also the final one: read on until the daemon has closed.
            while (clock.Elapsed.TotalSeconds < seconds && !watcher.Client.IsFinished)
            {
                if (watcher.Poll(clock.Elapsed.TotalSeconds) == 0) Thread.Sleep(5);
            }
            for (int k = 0; k < 100; k++) watcher.Poll(clock.Elapsed.TotalSeconds); // what was queued before the close
            Out("FINAL " + (watcher.SawFinalState ? "seen" : "missing"));
        }
        Out("DONE mood events=" + events + " help=" + helps);
        return 0;
    }

    static string Join(Dictionary<string, float> d)
    {
        if (d == null) return "";
        var parts = new List<string>();
        foreach (var kv in d) parts.Add(kv.Key + ":" + F(kv.Value, "F4"));
        return string.Join(" ", parts.ToArray());
    }
}
