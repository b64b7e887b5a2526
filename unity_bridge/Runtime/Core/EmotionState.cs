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

        public string Stream = "";
        public long Seq = -1;
        public string Label = "neutral";
        public float Confidence;
        public bool Voice;
        public bool Final;
        public float LatencyMs;
        /// <summary>Input status from /ser/status (e.g. "ended"), if any.</summary>
        public string Status;

        public readonly Dictionary<string, Dictionary<string, float>> Sets =
            new Dictionary<string, Dictionary<string, float>>(StringComparer.Ordinal);

        /// <summary>The values of one set, or null when nothing of it has arrived.</summary>
        public Dictionary<string, float> Values(string set)
        {
            Dictionary<string, float> d;
            return set != null && Sets.TryGetValue(set, out d) ? d : null;
        }

        /// <summary>Most names kept per set and most sets (a sender inventing names cannot grow memory without bound).</summary>
        public const int MaxNames = 512;

        public void SetValue(string set, string name, float value)
        {
            if (set == null || name == null) return;
            Dictionary<string, float> d;
            if (!Sets.TryGetValue(set, out d))
            {
                if (Sets.Count >= 16) return;
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

        public void CopyFrom(EmotionState o)
        {
            Stream = o.Stream; Seq = o.Seq; Label = o.Label; Confidence = o.Confidence; Voice = o.Voice;
            Final = o.Final; LatencyMs = o.LatencyMs; Status = o.Status;
            Sets.Clear();
            foreach (var kv in o.Sets) Sets[kv.Key] = new Dictionary<string, float>(kv.Value, StringComparer.Ordinal);
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
    /// Folds OSC packets into an EmotionState: the generic scheme (/ser/state s f, /ser/emotion/&lt;label&gt; f,
    /// /ser/voice i, /ser/seq i, /ser/vrm/&lt;name&gt; f, /ser/arkit/&lt;name&gt; f, /ser/status s) and the VMC
    /// protocol (/VMC/Ext/Blend/Val s f ... then /VMC/Ext/Blend/Apply). Unknown addresses are ignored.
    /// </summary>
    public sealed class OscStateDecoder
    {
        public readonly EmotionState State = new EmotionState();
        readonly Dictionary<string, float> pendingVmc = new Dictionary<string, float>(StringComparer.Ordinal);

        /// <summary>Complete decisions seen: a /ser/seq or a /VMC/Ext/Blend/Apply.</summary>
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
            string a = m.Address;
            if (a == "/VMC/Ext/Blend/Val")
            {
                if (m.Args.Count >= 2 && (m.Args[0].Kind == 's' || m.Args[0].Kind == 'S') && m.Args[0].String != null)
                {
                    if (pendingVmc.Count < EmotionState.MaxNames || pendingVmc.ContainsKey(m.Args[0].String))
                        pendingVmc[m.Args[0].String] = EmotionState.Sanitize(m.Args[1].AsFloat());
                    return true;
                }
                Ignored++;
                return false;
            }
            if (a == "/VMC/Ext/Blend/Apply")
            {
                foreach (var kv in pendingVmc) State.SetValue(EmotionState.SetVmc, kv.Key, kv.Value);
                pendingVmc.Clear();
                Frames++;
                return true;
            }
            if (!a.StartsWith("/ser/", StringComparison.Ordinal)) { Ignored++; return false; }
            var parts = a.Substring(5).Split('/');
            // /ser/<key> or /ser/<set>/<name>; a stream prefix (/ser/<stream>/...) is accepted too.
            string key, name = null, stream = null;
            if (parts.Length == 1) key = parts[0];
            else if (parts.Length == 2 && IsSet(parts[0])) { key = parts[0]; name = parts[1]; }
            else if (parts.Length == 2) { stream = parts[0]; key = parts[1]; }
            else if (parts.Length == 3) { stream = parts[0]; key = parts[1]; name = parts[2]; }
            else { Ignored++; return false; }
            if (stream != null) State.Stream = stream;
            if (name == null)
            {
                switch (key)
                {
                    case "state":
                        if (m.Args.Count >= 1 && m.Args[0].String != null) State.Label = m.Args[0].String;
                        if (m.Args.Count >= 2) State.Confidence = EmotionState.Sanitize(m.Args[1].AsFloat());
                        State.Final = false;
                        return true;
                    case "voice":
                        if (m.Args.Count >= 1) State.Voice = m.Args[0].AsInt() != 0;
                        return true;
                    case "seq":
                        if (m.Args.Count >= 1) State.Seq = m.Args[0].AsInt();
                        Frames++;
                        return true;
                    case "status":
                        if (m.Args.Count >= 1) State.Status = m.Args[0].String;
                        return true;
                }
                Ignored++;
                return false;
            }
            if (m.Args.Count < 1 || !m.Args[0].IsNumber) { Ignored++; return false; }
            string set = key == "emotion" ? EmotionState.SetProbs : key;
            if (!IsSet(key)) { Ignored++; return false; }
            State.SetValue(set, name, m.Args[0].AsFloat());
            return true;
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
            var m = new WsMessage { Type = type, Json = obj };
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
