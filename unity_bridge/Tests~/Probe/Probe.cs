// Console probe for CI: runs the bridge's Core classes outside Unity (under Mono) and prints what
// they decode, one line per item, for tests to assert on.
//
//   mono Probe.exe --udp PORT [--ws URL] [--count N] [--seconds T]
//                  [--targets A,B,C] [--set probs|vrm|vrm0|arkit|vmc|weights] [--bind src=dst[*gain],...]
//                  [--passthrough] [--smoothing S] [--scale X]
//   mono Probe.exe --selftest
//
// Lines: "READY udp=PORT", "OSC <address> <args>" per decoded message (e.g. OSC /ser/state s:happy f:0.7100),
// "MALFORMED total=N <reason>", "WS connected", "WS hello labels=a,b", "WS state seq=.. label=.. conf=..
// voice=.. final=..", "WS probs a:0.1000 ...", "WS weights <set> a:0.1000 ...", "WEIGHT <name> <value>" for
// blendshape weights (0..scale) written by the mapper on a fake mesh with --targets, "MISSING <name>",
// and at the end "DONE osc=N ws=M malformed=K". A message to /probe/quit ends it.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Threading;
using SerDaemon.Bridge;

static class Probe
{
    sealed class FakeMesh : IBlendshapeSink
    {
        public readonly List<string> Names = new List<string>();
        public readonly Dictionary<int, float> Weights = new Dictionary<int, float>();
        public bool Print = true;
        public int Writes;
        public bool Throw;
        public int GetIndex(string name) { return Names.IndexOf(name); }
        public int Count { get { return Names.Count; } }
        public string GetName(int i) { return Names[i]; }

        public void SetWeight(int i, float w)
        {
            if (Throw) throw new InvalidOperationException("mesh gone");
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
        bool passthrough = false;
        float smoothing = 0f, scale = 100f;
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            Func<string> next = () => { if (i + 1 >= args.Length) throw new ArgumentException(a + " needs a value"); return args[++i]; };
            switch (a)
            {
                case "--selftest": return SelfTest.Run(Out);
                case "--udp": udp = int.Parse(next(), CultureInfo.InvariantCulture); break;
                case "--ws": ws = next(); break;
                case "--count": count = int.Parse(next(), CultureInfo.InvariantCulture); break;
                case "--seconds": seconds = double.Parse(next(), CultureInfo.InvariantCulture); break;
                case "--targets": targets = next(); break;
                case "--set": set = next(); break;
                case "--bind": bind = next(); break;
                case "--passthrough": passthrough = true; break;
                case "--smoothing": smoothing = float.Parse(next(), CultureInfo.InvariantCulture); break;
                case "--scale": scale = float.Parse(next(), CultureInfo.InvariantCulture); break;
                default: Out("usage error: unknown argument " + a); return 2;
            }
        }
        if (udp < 0 && ws == null) { Out("usage error: give --udp PORT and/or --ws URL, or --selftest"); return 2; }

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

    static string Join(Dictionary<string, float> d)
    {
        if (d == null) return "";
        var parts = new List<string>();
        foreach (var kv in d) parts.Add(kv.Key + ":" + F(kv.Value, "F4"));
        return string.Join(" ", parts.ToArray());
    }

    // ------------------------------------------------------------------ self test
    static class SelfTest
    {
        static int passed, failed;
        static Action<string> log;

        static void Check(string name, bool ok, string detail = "")
        {
            if (ok) { passed++; log("SELFTEST ok " + name); }
            else { failed++; log("SELFTEST FAIL " + name + " " + detail); }
        }

        static bool Near(float a, float b, float eps = 0.01f) { return Math.Abs(a - b) <= eps; }

        public static int Run(Action<string> output)
        {
            log = output;
            Osc();
            Fuzz();
            Json();
            Decoder();
            Mapper();
            Receiver();
            log("SELFTEST " + (failed == 0 ? "PASS" : "FAIL") + " passed=" + passed + " failed=" + failed);
            return failed == 0 ? 0 : 1;
        }

        static byte[] GenericBundle()
        {
            return OscWriter.Bundle(
                OscWriter.Message("/ser/state", "happy", 0.71f),
                OscWriter.Message("/ser/emotion/happy", 0.71f),
                OscWriter.Message("/ser/emotion/neutral", 0.05f),
                OscWriter.Message("/ser/voice", 1),
                OscWriter.Message("/ser/seq", 12),
                OscWriter.Message("/ser/vrm/happy", 0.8f));
        }

        static void Osc()
        {
            OscPacket p; string err;
            var msg = OscWriter.Message("/a/b", 7, 1.5f, "hey", true, false);
            bool ok = OscPacket.TryParse(msg, out p, out err);
            Check("osc.message", ok && p.Messages.Count == 1 && p.Messages[0].ToString() == "/a/b i:7 f:1.5000 s:hey T F",
                ok ? p.Messages[0].ToString() : err);
            var nested = OscWriter.Bundle(OscWriter.Message("/x", 1), OscWriter.Bundle(OscWriter.Message("/y", 2f)));
            ok = OscPacket.TryParse(nested, out p, out err);
            Check("osc.nested_bundle", ok && p.IsBundle && p.Messages.Count == 2 && p.Messages[1].Address == "/y");
            // Unknown type tag 'Q' after an int: the int is kept, decoding stops, nothing throws.
            var raw = new byte[] { (byte)'/', (byte)'u', 0, 0, (byte)',', (byte)'i', (byte)'Q', (byte)'f', 0, 0, 0, 0, 0, 0, 0, 5, 9, 9, 9, 9 };
            ok = OscPacket.TryParse(raw, out p, out err);
            Check("osc.unknown_tag", ok && p.Messages[0].Args.Count == 1 && p.Messages[0].Args[0].Int == 5 && p.Messages[0].HasUnknownTypes,
                ok ? p.Messages[0].ToString() : err);
            // A blob, int64, double: skipped correctly so a following float still reads.
            var mixed = new List<byte>();
            mixed.AddRange(new byte[] { (byte)'/', (byte)'m', 0, 0, (byte)',', (byte)'b', (byte)'h', (byte)'d', (byte)'f', 0, 0, 0 });
            mixed.AddRange(new byte[] { 0, 0, 0, 3, 1, 2, 3, 0 });
            mixed.AddRange(new byte[] { 0, 0, 0, 0, 0, 0, 0, 9 });
            mixed.AddRange(BitConverter.IsLittleEndian ? Rev(BitConverter.GetBytes(2.5)) : BitConverter.GetBytes(2.5));
            mixed.AddRange(new byte[] { 0x3f, 0x40, 0, 0 }); // 0.75f big-endian
            ok = OscPacket.TryParse(mixed.ToArray(), out p, out err);
            Check("osc.blob_int64_double", ok && p.Messages[0].Args.Count == 4 && p.Messages[0].Args[1].Long == 9 &&
                  p.Messages[0].Args[2].Double == 2.5 && p.Messages[0].Args[3].Float == 0.75f, ok ? p.Messages[0].ToString() : err);
            // Every truncation of a valid bundle is rejected (or, at a message boundary, decodes a prefix) without throwing.
            var full = GenericBundle();
            bool allSafe = true;
            for (int n = 0; n < full.Length; n++)
            {
                if (OscPacket.TryParse(full, n, out p, out err) && n % 4 != 0) allSafe = false;
            }
            Check("osc.truncations_rejected", allSafe);
            // Deep nesting is refused instead of recursing without bound.
            var deep = OscWriter.Message("/d", 1);
            for (int k = 0; k < 20; k++) deep = OscWriter.Bundle(deep);
            Check("osc.deep_nesting_refused", !OscPacket.TryParse(deep, out p, out err) && err.Contains("deep"), err);
            // Bundle element size past the end.
            var bad = (byte[])full.Clone();
            bad[16] = 0x7f;
            Check("osc.bad_element_size", !OscPacket.TryParse(bad, out p, out err), err);
            Check("osc.not_osc", !OscPacket.TryParse(new byte[] { 1, 2, 3, 4 }, out p, out err) && !OscPacket.TryParse(new byte[0], out p, out err));
        }

        static byte[] Rev(byte[] b) { Array.Reverse(b); return b; }

        static void Fuzz()
        {
            var rng = new Random(1234);
            var seeds = new[] { GenericBundle(), OscWriter.Message("/VMC/Ext/Blend/Val", "Joy", 0.5f) };
            int threw = 0, parsed = 0;
            for (int k = 0; k < 20000; k++)
            {
                byte[] d;
                if (k % 2 == 0)
                {
                    d = new byte[rng.Next(0, 64)];
                    rng.NextBytes(d);
                    if (d.Length >= 8 && k % 4 == 0) Array.Copy(System.Text.Encoding.ASCII.GetBytes("#bundle\0"), d, 8);
                }
                else
                {
                    d = (byte[])seeds[k % seeds.Length].Clone();
                    int flips = rng.Next(1, 4);
                    for (int f = 0; f < flips; f++) d[rng.Next(d.Length)] = (byte)rng.Next(256);
                }
                try { OscPacket p; string e; if (OscPacket.TryParse(d, out p, out e)) parsed++; }
                catch (Exception) { threw++; }
            }
            Check("osc.fuzz_never_throws", threw == 0, "threw=" + threw + " parsed=" + parsed);
        }

        static void Json()
        {
            const string state = "{\"type\":\"state\",\"protocol\":1,\"stream\":\"mic\",\"seq\":12,\"label\":\"happy\",\"confidence\":0.71," +
                "\"voice\":true,\"probs\":{\"neutral\":0.05,\"happy\":0.71},\"raw\":null,\"final\":false," +
                "\"weights\":{\"vrm0\":{\"Joy\":0.8},\"Angry\":0.25},\"name\":\"caf\\u00e9 \\\"q\\\"\",\"arr\":[1,-2.5e1,[],{}]}";
            WsMessage m; string err;
            bool ok = WsMessage.TryDecode(state, out m, out err);
            Check("json.state", ok && m.State.Label == "happy" && m.State.Seq == 12 && Near(m.State.Confidence, 0.71f) && m.State.Voice &&
                  Near(m.State.Probability("neutral"), 0.05f) && Near(m.State.Values("vrm0")["Joy"], 0.8f) &&
                  Near(m.State.Values("weights")["Angry"], 0.25f) && MiniJson.Str(m.Json, "name") == "caf\u00e9 \"q\"", err);
            ok = WsMessage.TryDecode("{\"type\":\"hello\",\"protocol\":1,\"labels\":[\"neutral\",\"angry\"]}", out m, out err);
            Check("json.hello", ok && m.Type == "hello" && m.Labels.Length == 2 && m.Labels[1] == "angry");
            bool allRejected = true, threw = false;
            for (int n = 0; n < state.Length - 1; n++)
            {
                try { if (WsMessage.TryDecode(state.Substring(0, n), out m, out err)) allRejected = false; }
                catch (Exception) { threw = true; }
            }
            Check("json.truncations_rejected", allRejected && !threw);
            string deep = new string('[', 5000) + new string(']', 5000);
            object o;
            Check("json.deep_refused", !MiniJson.TryParse(deep, out o, out err));
            Check("json.not_object", !WsMessage.TryDecode("[1,2]", out m, out err) && !WsMessage.TryDecode("nope", out m, out err));
        }

        static void Decoder()
        {
            var d = new OscStateDecoder();
            OscPacket p; string err;
            OscPacket.TryParse(GenericBundle(), out p, out err);
            d.Apply(p);
            Check("decoder.generic", d.State.Label == "happy" && Near(d.State.Confidence, 0.71f) && d.State.Voice && d.State.Seq == 12 &&
                  Near(d.State.Probability("happy"), 0.71f) && Near(d.State.Values("vrm")["happy"], 0.8f) && d.Frames == 1);
            var vals = OscWriter.Bundle(OscWriter.Message("/VMC/Ext/Blend/Val", "Joy", 0.4f), OscWriter.Message("/VMC/Ext/Blend/Val", "Angry", 2f));
            OscPacket.TryParse(vals, out p, out err);
            d.Apply(p);
            Check("decoder.vmc_waits_for_apply", d.State.Values("vmc") == null);
            OscPacket.TryParse(OscWriter.Message("/VMC/Ext/Blend/Apply"), out p, out err);
            d.Apply(p);
            var vmc = d.State.Values("vmc");
            Check("decoder.vmc_apply", vmc != null && Near(vmc["Joy"], 0.4f) && Near(vmc["Angry"], 1f) && d.Frames == 2);
            OscPacket.TryParse(OscWriter.Message("/ser/state", 5, "x"), out p, out err); // wrong types: ignored safely
            d.Apply(p);
            Check("decoder.wrong_types_safe", d.State.Label == "happy");
            for (int k = 0; k < 2000; k++)
            {
                OscPacket.TryParse(OscWriter.Message("/VMC/Ext/Blend/Val", "n" + k, 0.5f), out p, out err);
                d.Apply(p);
            }
            OscPacket.TryParse(OscWriter.Message("/VMC/Ext/Blend/Apply"), out p, out err);
            d.Apply(p);
            Check("decoder.names_bounded", d.State.Values("vmc").Count == EmotionState.MaxNames, d.State.Values("vmc").Count.ToString());
        }

        static void Mapper()
        {
            var mesh = new FakeMesh { Print = false };
            mesh.Names.AddRange(new[] { "Joy", "Angry", "Sorrow", "fun" });
            var missing = new List<string>();
            var m = new BlendshapeMapper(mesh) { SmoothingSeconds = 0f, WeightScale = 100f, PassThrough = false };
            m.MissingName = n => missing.Add(n);
            m.Bindings.Add(new BlendshapeBinding("happy", "Joy"));
            m.Bindings.Add(new BlendshapeBinding("angry", "Angry"));
            m.Bindings.Add(new BlendshapeBinding("disgust", "Angry", 0.5f));
            m.Bindings.Add(new BlendshapeBinding("calm", "Fun"));          // case-insensitive fallback to "fun"
            m.Bindings.Add(new BlendshapeBinding("surprised", "Surprised")); // not on the mesh
            m.Bindings.Add(new BlendshapeBinding("sad", "Blink"));          // not on the mesh
            m.SetSources(new Dictionary<string, float> { { "happy", 0.5f }, { "angry", 0.8f }, { "disgust", 0.8f }, { "calm", 0.3f }, { "surprised", 1f } });
            m.Update(0.016f);
            Check("mapper.scale_0_100", Near(mesh.Weights[0], 50f) && Near(m.GetWeight("Joy"), 50f), F(mesh.Weights[0], "F3"));
            Check("mapper.gain_sum_clamped", Near(mesh.Weights[1], 100f), F(mesh.Weights[1], "F3")); // 0.8 + 0.4 -> 1
            Check("mapper.case_insensitive_fallback", Near(mesh.Weights[3], 30f));
            for (int k = 0; k < 50; k++) m.Update(0.016f);
            Check("mapper.missing_reported_once", missing.Count == 2 && missing.Contains("Surprised") && missing.Contains("Blink"),
                string.Join(",", missing.ToArray()));
            int writes = mesh.Writes;
            for (int k = 0; k < 10; k++) m.Update(0.016f);
            Check("mapper.writes_only_on_change", mesh.Writes == writes, (mesh.Writes - writes) + " extra writes");
            m.SetSource("happy", float.NaN);
            m.SetSource("angry", 7f);
            m.Update(0.016f);
            Check("mapper.nan_and_range_sanitized", Near(mesh.Weights[0], 0f) && Near(mesh.Weights[1], 100f));
            m.WeightScale = 1f;
            m.SetSources(new Dictionary<string, float> { { "happy", 1f } });
            m.Update(0.016f);
            Check("mapper.custom_scale", Near(mesh.Weights[0], 1f, 1e-4f) && Near(mesh.Weights[1], 0f));

            // Smoothing: time constant 0.1 s; a step 0 -> 1 reaches 1 - e^-1 = 63.2% after 0.1 s, ~100% after 1 s.
            var mesh2 = new FakeMesh { Print = false };
            mesh2.Names.Add("Joy");
            var s = new BlendshapeMapper(mesh2) { SmoothingSeconds = 0.1f, PassThrough = true };
            s.SetSource("Joy", 1f);
            s.Update(0.1f);
            Check("mapper.smoothing_one_tau", Near(mesh2.Weights[0], 63.21f, 0.05f), F(mesh2.Weights[0], "F3"));
            for (int k = 0; k < 10; k++) s.Update(0.05f); // frame-rate independent: 10 x 0.05 s = 0.5 s more
            float expect = 100f * (1f - (float)Math.Exp(-6.0));
            Check("mapper.smoothing_converges", Near(mesh2.Weights[0], expect, 0.05f), F(mesh2.Weights[0], "F3") + " vs " + F(expect, "F3"));
            s.ClearSources();
            s.Update(0.1f);
            Check("mapper.smoothing_decays", Near(mesh2.Weights[0], expect * (float)Math.Exp(-1.0), 0.05f), F(mesh2.Weights[0], "F3"));
            s.SetSource("Unknown", 1f);
            int fired = 0;
            s.MissingName = n => fired++;
            for (int k = 0; k < 100; k++) s.Update(0.01f);
            Check("mapper.passthrough_missing_once", fired == 1, "fired=" + fired);
            // A failing sink is reported once, never thrown.
            var mesh3 = new FakeMesh { Print = false, Throw = true };
            mesh3.Names.Add("Joy");
            int errors = 0;
            bool threw = false;
            var e = new BlendshapeMapper(mesh3) { Error = x => errors++ };
            e.SetSource("Joy", 1f);
            try { for (int k = 0; k < 20; k++) e.Update(0.016f); } catch (Exception) { threw = true; }
            Check("mapper.sink_errors_contained", !threw && errors == 1, "errors=" + errors);
            // Rebind forgets the reported names (new mesh): reported again once.
            s.Rebind();
            s.Update(0.01f); s.Update(0.01f);
            Check("mapper.rebind_reports_again", fired == 2, "fired=" + fired);
        }

        static void Receiver()
        {
            using (var rx = new OscReceiver(0))
            using (var tx = new System.Net.Sockets.UdpClient())
            {
                var ep = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, rx.Port);
                var rng = new Random(7);
                for (int k = 0; k < 50; k++) { var junk = new byte[rng.Next(1, 200)]; rng.NextBytes(junk); tx.Send(junk, junk.Length, ep); }
                var good = GenericBundle();
                tx.Send(good, good.Length, ep);
                OscPacket p = null;
                var sw = Stopwatch.StartNew();
                while (sw.ElapsedMilliseconds < 3000 && p == null) { if (!rx.TryDequeue(out p)) Thread.Sleep(5); }
                Check("receiver.survives_junk", p != null && p.Messages.Count == 6 && rx.PacketsMalformed >= 45,
                    "malformed=" + rx.PacketsMalformed + " received=" + rx.PacketsReceived);
            }
            var t = Stopwatch.StartNew();
            var idle = new OscReceiver(0);
            Thread.Sleep(50);
            idle.Dispose();
            Check("receiver.dispose_fast", t.ElapsedMilliseconds < 1500, t.ElapsedMilliseconds + " ms");
        }
    }
}
