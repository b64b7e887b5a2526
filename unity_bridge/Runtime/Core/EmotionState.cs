// The emotion state the daemon broadcasts, and its decoding from OSC packets and JSON (plain C#).
using System;
using System.Collections.Generic;
using System.Globalization;

namespace SerDaemon.Bridge
{
    /// <summary>
    /// The latest state from ser-daemon. Values come in named sets:
    /// "probs" (smoothed class probabilities, keyed by label: neutral, calm, happy, ...),
    /// "vrm", "vrm0", "arkit" (the daemon's mapped expression weights, 0..1),
    /// "vmc" (VMC protocol /VMC/Ext/Blend/Val values, committed by /VMC/Ext/Blend/Apply),
    /// "weights" (a flat WebSocket "weights" object of target name to value).
    /// </summary>
    public sealed class EmotionState
    {
        public const string SetProbs = "probs";
        public const string SetVrm = "vrm";
        public const string SetVrm0 = "vrm0";
        public const string SetArkit = "arkit";
        public const string SetVmc = "vmc";
        public const string SetWeights = "weights";

        /// <summary>Input status meaning the stream's device is gone (the daemon retries): relax the face.</summary>
        public const string StatusNoAudio = "no_audio";

        /// <summary>The daemon's stream id ("mic", a file stem, ...); "" for OSC without a stream prefix and VMC.</summary>
        public string Stream = "";
        public long Seq = -1;
        public string Label = "neutral";
        public float Confidence;
        public bool Voice;
        public bool Final;
        public float LatencyMs;
        /// <summary>Input status from /ser/status or a WebSocket "status" message ("capturing", "no_audio"), if any.</summary>
        public string Status;
        /// <summary>When this state last changed, on the clock of whoever decoded it (the receiver: unscaled time).</summary>
        public double UpdatedAt = double.NegativeInfinity;
        /// <summary>Counts changes (a driver compares it to see new data without events).</summary>
        public long Version;

        public readonly Dictionary<string, Dictionary<string, float>> Sets =
            new Dictionary<string, Dictionary<string, float>>(StringComparer.Ordinal);

        /// <summary>True while the daemon reports the stream's input as gone ("no_audio").</summary>
        public bool NoAudio { get { return Status == StatusNoAudio; } }

        /// <summary>The values of one set, or null when nothing of it has arrived.</summary>
        public Dictionary<string, float> Values(string set)
        {
            Dictionary<string, float> d;
            return set != null && Sets.TryGetValue(set, out d) && d.Count > 0 ? d : null;
        }

        /// <summary>Most names kept per set and most sets (a sender inventing names cannot grow memory without bound).</summary>
        public const int MaxNames = 512;
        public const int MaxSets = 16;
        /// <summary>
        /// Longest set, value or stream name kept, in characters (the daemon's longest is an ARKit name of 19;
        /// stream ids are file stems or device names). Longer ones are ignored, so a sender cannot park
        /// 60 KB names in the tables.
        /// </summary>
        public const int MaxNameLength = 128;

        public void SetValue(string set, string name, float value)
        {
            if (set == null || name == null || name.Length > MaxNameLength || set.Length > MaxNameLength) return;
            Dictionary<string, float> d;
            if (!Sets.TryGetValue(set, out d))
            {
                if (Sets.Count >= MaxSets) return;
                d = new Dictionary<string, float>(StringComparer.Ordinal);
                Sets[set] = d;
            }
            if (d.Count >= MaxNames && !d.ContainsKey(name)) return;
            d[name] = Sanitize(value);
        }

        public float Probability(string label)
        {
            var d = Values(SetProbs);
            float v;
            return d != null && d.TryGetValue(label, out v) ? v : 0f;
        }

        /// <summary>
        /// Make this the fresh state of another stream (its slot was reused): values emptied, fields back to
        /// their defaults; Version keeps counting, so whoever compares it sees a change.
        /// </summary>
        public void Reset(string stream)
        {
            Stream = stream ?? ""; Seq = -1; Label = "neutral"; Confidence = 0f; Voice = false; Final = false; LatencyMs = 0f;
            Status = null; UpdatedAt = double.NegativeInfinity; Version++;
            ClearValues();
        }

        /// <summary>Empty every value set, keeping the dictionaries (and their capacity) for reuse.</summary>
        public void ClearValues()
        {
            foreach (var kv in Sets) kv.Value.Clear();
        }

        /// <summary>Copy another state into this one, reusing this one's dictionaries (no allocation once warmed up).</summary>
        public void CopyFrom(EmotionState o)
        {
            Stream = o.Stream; Seq = o.Seq; Label = o.Label; Confidence = o.Confidence; Voice = o.Voice;
            Final = o.Final; LatencyMs = o.LatencyMs; Status = o.Status; UpdatedAt = o.UpdatedAt; Version = o.Version;
            ClearValues();
            foreach (var kv in o.Sets)
                foreach (var v in kv.Value) SetValue(kv.Key, v.Key, v.Value);
        }

        public EmotionState Clone()
        {
            var c = new EmotionState();
            c.CopyFrom(this);
            return c;
        }

        /// <summary>Finite and within 0..1 (NaN and infinities become 0).</summary>
        public static float Sanitize(float v)
        {
            if (float.IsNaN(v) || float.IsInfinity(v)) return 0f;
            return v < 0f ? 0f : (v > 1f ? 1f : v);
        }

        public override string ToString()
        {
            return string.Format(CultureInfo.InvariantCulture, "seq={0} label={1} conf={2:F4} voice={3} final={4}",
                Seq, Label, Confidence, Voice ? 1 : 0, Final ? 1 : 0);
        }
    }

    /// <summary>
    /// One EmotionState per daemon stream (one per speaker), in the order they were first heard. A face
    /// follows one of them: Select("first") or Select("mic"). Bounded to MaxStreams: a new stream id beyond
    /// that takes the slot of the least recently heard stream (its state is reset and reused, so slot
    /// indices stay valid), so a sender cycling through ids cannot lock out the stream a face follows.
    /// </summary>
    public sealed class StreamStates
    {
        public const int MaxStreams = 16;
        /// <summary>The selector meaning "the daemon's first stream" (the default).</summary>
        public const string First = "first";

        readonly List<EmotionState> list = new List<EmotionState>();
        readonly List<long> heard = new List<long>();
        readonly List<string> preferred = new List<string>();
        long tick;

        public int Count { get { return list.Count; } }
        public EmotionState this[int index] { get { return list[index]; } }
        /// <summary>Streams pushed out to make room for a new one.</summary>
        public long Evicted { get; private set; }

        /// <summary>
        /// The state of this stream id, created on first use; beyond MaxStreams the least recently heard
        /// stream's slot is reused. Null for an id longer than EmotionState.MaxNameLength. Each call counts as
        /// hearing the stream.
        /// </summary>
        public EmotionState Get(string stream)
        {
            stream = stream ?? "";
            if (stream.Length > EmotionState.MaxNameLength) return null;
            tick++;
            for (int i = 0; i < list.Count; i++) if (list[i].Stream == stream) { heard[i] = tick; return list[i]; }
            if (list.Count < MaxStreams)
            {
                var s = new EmotionState { Stream = stream };
                list.Add(s);
                heard.Add(tick);
                return s;
            }
            int oldest = 0;
            for (int i = 1; i < list.Count; i++) if (heard[i] < heard[oldest]) oldest = i;
            var e = list[oldest];
            e.Reset(stream);
            heard[oldest] = tick;
            Evicted++;
            return e;
        }

        /// <summary>The daemon's stream order from its WebSocket hello ("streams"): "first" means its first.</summary>
        public void SetOrder(IList<string> streams)
        {
            preferred.Clear();
            if (streams == null) return;
            for (int i = 0; i < streams.Count && i < MaxStreams; i++) if (streams[i] != null) preferred.Add(streams[i]);
        }

        /// <summary>
        /// The state a face should follow: null, "" or "first" give the daemon's first stream (from the
        /// WebSocket hello, else the first heard); any other text names a stream id, compared as the daemon
        /// writes it into OSC addresses too (characters other than letters, digits, '_' and '-' as '_').
        /// Null while that stream has not been heard.
        /// </summary>
        public EmotionState Select(string selector)
        {
            if (string.IsNullOrEmpty(selector) || selector == First)
            {
                for (int p = 0; p < preferred.Count; p++)
                    for (int i = 0; i < list.Count; i++) if (list[i].Stream == preferred[p]) return list[i];
                return list.Count > 0 ? list[0] : null;
            }
            for (int i = 0; i < list.Count; i++) if (list[i].Stream == selector) return list[i];
            for (int i = 0; i < list.Count; i++) if (SameOscName(list[i].Stream, selector)) return list[i];
            return null;
        }

        /// <summary>Whether a and b are equal once both are written as the daemon's osc_name does.</summary>
        public static bool SameOscName(string a, string b)
        {
            if (a == null || b == null || a.Length != b.Length) return false;
            for (int i = 0; i < a.Length; i++) if (OscChar(a[i]) != OscChar(b[i])) return false;
            return true;
        }

        static char OscChar(char c)
        {
            return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ? c : '_';
        }

        public void Clear()
        {
            list.Clear();
            heard.Clear();
            preferred.Clear();
        }
    }

    /// <summary>
    /// Folds OSC packets into one EmotionState per stream: the generic scheme (/ser/state s f,
    /// /ser/emotion/&lt;label&gt; f, /ser/voice i, /ser/seq i, /ser/vrm/&lt;name&gt; f, /ser/arkit/&lt;name&gt; f,
    /// /ser/status s; with several streams /ser/&lt;stream&gt;/state and so on) and the VMC protocol
    /// (/VMC/Ext/Blend/Val s f ... then /VMC/Ext/Blend/Apply, stream ""). Unknown addresses are ignored.
    /// Each distinct address is split once and remembered (bounded), so decoding a bundle allocates nothing.
    /// </summary>
    public sealed class OscStateDecoder
    {
        /// <summary>Most distinct addresses remembered; beyond, addresses are split each time (allocates).</summary>
        public const int MaxRoutes = 4096;

        public readonly StreamStates Streams;
        readonly Dictionary<string, float> pendingVmc = new Dictionary<string, float>(StringComparer.Ordinal);
        readonly Dictionary<string, Route> routes = new Dictionary<string, Route>(StringComparer.Ordinal);
        readonly EmotionState empty = new EmotionState();

        enum Kind { Ignore, State, Voice, Seq, Status, Value, VmcVal, VmcApply }

        sealed class Route
        {
            public Kind Kind;
            public string Stream = "";
            public string Set, Name;
        }

        public OscStateDecoder() : this(new StreamStates()) { }
        public OscStateDecoder(StreamStates streams) { Streams = streams ?? new StreamStates(); }

        /// <summary>The clock stamped into EmotionState.UpdatedAt (the receiver sets it each frame).</summary>
        public double Now;

        /// <summary>The first stream's state (see StreamStates.Select); an empty state before anything arrived.</summary>
        public EmotionState State { get { return Streams.Select(StreamStates.First) ?? empty; } }

        /// <summary>Complete decisions seen (all streams): a /ser/seq or a /VMC/Ext/Blend/Apply.</summary>
        public long Frames { get; private set; }
        public long Ignored { get; private set; }

        /// <summary>Apply a packet's messages in order; returns how many were understood.</summary>
        public int Apply(OscPacket packet)
        {
            int n = 0;
            if (packet == null) return 0;
            for (int i = 0; i < packet.Messages.Count; i++) if (Apply(packet.Messages[i])) n++;
            return n;
        }

        public bool Apply(OscMessage m)
        {
            if (m == null || m.Address == null) return false;
            var r = Resolve(m.Address);
            if (r.Kind == Kind.Ignore) { Ignored++; return false; }
            if (r.Kind == Kind.VmcVal)
            {
                if (m.Args.Count >= 2 && (m.Args[0].Kind == 's' || m.Args[0].Kind == 'S') && m.Args[0].String != null)
                {
                    if (m.Args[0].String.Length <= EmotionState.MaxNameLength &&
                        (pendingVmc.Count < EmotionState.MaxNames || pendingVmc.ContainsKey(m.Args[0].String)))
                        pendingVmc[m.Args[0].String] = EmotionState.Sanitize(m.Args[1].AsFloat());
                    return true;
                }
                Ignored++;
                return false;
            }
            var st = Streams.Get(r.Stream);
            if (st == null) { Ignored++; return false; }
            switch (r.Kind)
            {
                case Kind.VmcApply:
                    foreach (var kv in pendingVmc) st.SetValue(EmotionState.SetVmc, kv.Key, kv.Value);
                    pendingVmc.Clear();
                    Frames++;
                    break;
                case Kind.State:
                    if (m.Args.Count >= 1 && m.Args[0].String != null) st.Label = m.Args[0].String;
                    if (m.Args.Count >= 2) st.Confidence = EmotionState.Sanitize(m.Args[1].AsFloat());
                    st.Final = false;
                    break;
                case Kind.Voice:
                    if (m.Args.Count >= 1) st.Voice = m.Args[0].AsInt() != 0;
                    break;
                case Kind.Seq:
                    if (m.Args.Count >= 1) st.Seq = m.Args[0].AsInt();
                    Frames++;
                    break;
                case Kind.Status:
                    if (m.Args.Count >= 1) st.Status = m.Args[0].String;
                    break;
                case Kind.Value:
                    if (m.Args.Count < 1 || !m.Args[0].IsNumber) { Ignored++; return false; }
                    st.SetValue(r.Set, r.Name, m.Args[0].AsFloat());
                    break;
            }
            st.UpdatedAt = Now;
            st.Version++;
            return true;
        }

        /// <summary>Longest address decoded, in characters (the daemon's longest is about 40 plus the stream id); longer ones are ignored and never cached.</summary>
        public const int MaxAddressLength = 5 + EmotionState.MaxNameLength + 1 + 8 + 1 + EmotionState.MaxNameLength; // /ser/<stream>/<set>/<name>
        static readonly Route TooLong = new Route();

        /// <summary>Distinct addresses remembered (at most MaxRoutes, each at most MaxAddressLength long).</summary>
        public int RouteCount { get { return routes.Count; } }

        Route Resolve(string a)
        {
            Route r;
            if (a.Length > MaxAddressLength) return TooLong; // Kind.Ignore
            if (routes.TryGetValue(a, out r)) return r;
            r = Parse(a);
            if (routes.Count < MaxRoutes) routes[a] = r;
            return r;
        }

        static Route Parse(string a)
        {
            var r = new Route();
            if (a == "/VMC/Ext/Blend/Val") { r.Kind = Kind.VmcVal; return r; }
            if (a == "/VMC/Ext/Blend/Apply") { r.Kind = Kind.VmcApply; return r; }
            if (!a.StartsWith("/ser/", StringComparison.Ordinal)) return r;
            var parts = a.Substring(5).Split('/');
            // /ser/<key> or /ser/<set>/<name>; a stream prefix (/ser/<stream>/...) is accepted too.
            string key, name = null;
            if (parts.Length == 1) key = parts[0];
            else if (parts.Length == 2 && IsSet(parts[0])) { key = parts[0]; name = parts[1]; }
            else if (parts.Length == 2) { r.Stream = parts[0]; key = parts[1]; }
            else if (parts.Length == 3) { r.Stream = parts[0]; key = parts[1]; name = parts[2]; }
            else return r;
            if (name == null)
            {
                switch (key)
                {
                    case "state": r.Kind = Kind.State; break;
                    case "voice": r.Kind = Kind.Voice; break;
                    case "seq": r.Kind = Kind.Seq; break;
                    case "status": r.Kind = Kind.Status; break;
                }
                return r;
            }
            if (!IsSet(key)) return r;
            r.Kind = Kind.Value;
            r.Set = key == "emotion" ? EmotionState.SetProbs : key;
            r.Name = name;
            return r;
        }

        static bool IsSet(string s)
        {
            return s == "emotion" || s == "vrm" || s == "vrm0" || s == "arkit";
        }
    }

    /// <summary>One decoded WebSocket message.</summary>
    public sealed class WsMessage
    {
        /// <summary>"hello", "state", or whatever "type" the daemon sent (other types carry only Json).</summary>
        public string Type;
        public EmotionState State;
        /// <summary>For "status" messages: the stream and its input status ("capturing", "no_audio").</summary>
        public string Stream, Status;
        public string[] Labels;
        public object Json;

        /// <summary>Decode a text message; false (with a reason) for anything that is not a JSON object with a type.</summary>
        public static bool TryDecode(string text, out WsMessage message, out string error)
        {
            message = null;
            object json;
            if (!MiniJson.TryParse(text, out json, out error)) return false;
            var obj = json as Dictionary<string, object>;
            string type = MiniJson.Str(obj, "type");
            if (obj == null || type == null) { error = "not a JSON object with a \"type\""; return false; }
            var m = new WsMessage { Type = type, Json = obj, Stream = MiniJson.Str(obj, "stream"), Status = MiniJson.Str(obj, "status") };
            object v;
            if (obj.TryGetValue("labels", out v) && v is List<object>)
            {
                var list = new List<string>();
                foreach (var x in (List<object>)v) if (x is string) list.Add((string)x);
                m.Labels = list.ToArray();
            }
            if (type == "state")
            {
                var s = new EmotionState();
                s.Stream = MiniJson.Str(obj, "stream", "");
                s.Seq = (long)MiniJson.Num(obj, "seq", -1);
                s.Label = MiniJson.Str(obj, "label", "neutral");
                s.Confidence = EmotionState.Sanitize((float)MiniJson.Num(obj, "confidence"));
                s.Voice = MiniJson.Bool(obj, "voice");
                s.Final = MiniJson.Bool(obj, "final");
                s.LatencyMs = (float)MiniJson.Num(obj, "latency_ms");
                var probs = MiniJson.Obj(obj, "probs");
                if (probs != null)
                    foreach (var kv in probs) if (kv.Value is double) s.SetValue(EmotionState.SetProbs, kv.Key, (float)(double)kv.Value);
                var weights = MiniJson.Obj(obj, "weights");
                if (weights != null)
                {
                    foreach (var kv in weights)
                    {
                        // Either {"vrm": {"happy": 0.7}, "arkit": {...}} or flat {"Joy": 0.7}.
                        if (kv.Value is double) s.SetValue(EmotionState.SetWeights, kv.Key, (float)(double)kv.Value);
                        var inner = kv.Value as Dictionary<string, object>;
                        if (inner == null) continue;
                        foreach (var w in inner) if (w.Value is double) s.SetValue(kv.Key, w.Key, (float)(double)w.Value);
                    }
                }
                m.State = s;
            }
            message = m;
            error = null;
            return true;
        }
    }
}
