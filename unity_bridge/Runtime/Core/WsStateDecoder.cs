// Decodes ser-daemon's WebSocket JSON (UTF-8 bytes) straight into per-stream EmotionStates (plain C#).
using System;
using System.Collections.Generic;
using System.Text;

namespace SerDaemon.Bridge
{
    /// <summary>
    /// Reads the daemon's JSON messages from UTF-8 bytes without building a JSON tree: "state" messages
    /// update the state of their stream (values replaced, dictionaries reused), "status" messages set the
    /// stream's Status ("no_audio" relaxes the face), "hello" gives the labels and the stream order, "event"
    /// (a mood event, with --mood) fills LastEvent. Names
    /// and ids come from a bounded string cache, numbers are parsed in place, so a state costs no
    /// allocation once its names have been seen. Unknown fields are skipped; malformed input returns false
    /// (never throws) and leaves the states as they were. Not thread-safe: one decoder per thread.
    /// </summary>
    public sealed class WsStateDecoder
    {
        public const int MaxDepth = 64;

        public readonly StreamStates Streams;
        /// <summary>The clock stamped into EmotionState.UpdatedAt.</summary>
        public double Now;
        /// <summary>The model's labels from the last hello (null before one arrived).</summary>
        public string[] Labels { get; private set; }
        /// <summary>Type of the last message decoded ("hello", "state", "status", "event", or another type).</summary>
        public string LastType { get; private set; }
        /// <summary>The stream the last state or status message was about.</summary>
        public EmotionState LastState { get; private set; }
        public string LastError { get; private set; }
        /// <summary>
        /// The last mood event decoded (LastType "event"; null before one). Filled in place: the same object
        /// is reused two events later, so Clone() what you keep.
        /// </summary>
        public MoodEvent LastEvent { get; private set; }

        readonly Utf8StringCache strings = new Utf8StringCache();
        readonly EmotionState scratch = new EmotionState();
        MoodEvent eventScratch = new MoodEvent(), eventSpare = new MoodEvent();
        bool eventTouched;
        readonly List<string> labelsRead = new List<string>();
        readonly List<string> streamsRead = new List<string>();
        char[] chars = new char[64];
        byte[] d;
        int pos, end;
        string error;
        bool hasLabels, hasStreams, hasStatus;

        public WsStateDecoder() : this(new StreamStates()) { }
        public WsStateDecoder(StreamStates streams) { Streams = streams ?? new StreamStates(); }

        public bool Decode(string text)
        {
            var b = Encoding.UTF8.GetBytes(text ?? "");
            return Decode(b, b.Length);
        }

        /// <summary>Decode one message; true when it was a JSON object with a "type" (its effect is applied).</summary>
        public bool Decode(byte[] utf8, int length)
        {
            d = utf8; pos = 0; end = length; error = null;
            scratch.Stream = ""; scratch.Seq = -1; scratch.Label = "neutral"; scratch.Confidence = 0f; scratch.Voice = false;
            scratch.Final = false; scratch.LatencyMs = 0f; scratch.Status = null;
            scratch.ClearValues();
            labelsRead.Clear(); streamsRead.Clear();
            if (eventTouched) { eventScratch.Clear(); eventTouched = false; }
            hasLabels = hasStreams = hasStatus = false;
            string type = null;
            bool ok;
            try
            {
                ok = utf8 != null && length >= 0 && length <= utf8.Length && ReadMessage(out type);
            }
            catch (Exception e)
            {
                ok = Fail("decoder exception: " + e.GetType().Name);
            }
            d = null;
            if (ok && type == null) ok = Fail("not a JSON object with a \"type\"");
            if (!ok) { LastError = error ?? "bad JSON"; return false; }
            LastType = type;
            LastState = null;
            if (type == "hello")
            {
                if (hasLabels) Labels = labelsRead.ToArray();
                if (hasStreams) Streams.SetOrder(streamsRead);
                return true;
            }
            if (type == "event")
            {
                // Swap, so a malformed message never leaves a half-written LastEvent behind.
                eventScratch.Stream = scratch.Stream;
                var done = eventScratch;
                eventScratch = LastEvent ?? eventSpare;
                eventScratch.Clear();
                LastEvent = done;
                return true;
            }
            if (type != "state" && type != "status") return true;
            var st = Streams.Get(scratch.Stream);
            if (st == null) return true;
            if (type == "status")
            {
                if (hasStatus) st.Status = scratch.Status;
            }
            else
            {
                string status = st.Status;
                long version = st.Version;
                st.CopyFrom(scratch);
                st.Status = status; // states do not carry the input status; keep the last one
                st.Version = version;
            }
            st.UpdatedAt = Now;
            st.Version++;
            LastState = st;
            return true;
        }

        bool Fail(string why)
        {
            if (error == null) error = why + " at " + pos;
            return false;
        }

        void SkipWs()
        {
            while (pos < end && (d[pos] == ' ' || d[pos] == '\t' || d[pos] == '\n' || d[pos] == '\r')) pos++;
        }

        bool Expect(byte c)
        {
            SkipWs();
            if (pos >= end || d[pos] != c) return Fail("expected '" + (char)c + "'");
            pos++;
            return true;
        }

        bool ReadMessage(out string type)
        {
            type = null;
            SkipWs();
            if (pos >= end || d[pos] != '{') return Fail("not a JSON object");
            pos++;
            SkipWs();
            if (pos < end && d[pos] == '}') { pos++; return End(); }
            while (true)
            {
                int ks, kl;
                if (!ReadKey(out ks, out kl)) return false;
                SkipWs();
                if (!ReadField(ks, kl, ref type)) return false;
                SkipWs();
                if (pos >= end) return Fail("unterminated object");
                byte c = d[pos++];
                if (c == '}') return End();
                if (c != ',') return Fail("expected , or }");
            }
        }

        bool End()
        {
            SkipWs();
            return pos == end || Fail("trailing characters");
        }

        bool ReadKey(out int start, out int length)
        {
            start = length = 0;
            SkipWs();
            if (pos >= end || d[pos] != '"') return Fail("expected a key");
            pos++;
            start = pos;
            while (pos < end && d[pos] != '"')
            {
                if (d[pos] == '\\') return Fail("escaped keys are not used by the daemon");
                pos++;
            }
            if (pos >= end) return Fail("unterminated key");
            length = pos - start;
            pos++;
            return Expect((byte)':');
        }

        bool KeyIs(int start, int length, string key)
        {
            if (length != key.Length) return false;
            for (int i = 0; i < length; i++) if (d[start + i] != key[i]) return false;
            return true;
        }

        bool ReadField(int ks, int kl, ref string type)
        {
            if (KeyIs(ks, kl, "type")) return ReadStringOrNull(out type);
            if (KeyIs(ks, kl, "stream")) { string s; if (!ReadStringOrNull(out s)) return false; scratch.Stream = s ?? ""; return true; }
            if (KeyIs(ks, kl, "label")) { string s; if (!ReadStringOrNull(out s)) return false; scratch.Label = s ?? "neutral"; return true; }
            if (KeyIs(ks, kl, "status")) { hasStatus = true; return ReadStringOrNull(out scratch.Status); }
            if (KeyIs(ks, kl, "seq")) { double v; if (!ReadNumberLoose(out v)) return false; scratch.Seq = (long)v; return true; }
            if (KeyIs(ks, kl, "confidence")) { double v; if (!ReadNumberLoose(out v)) return false; scratch.Confidence = EmotionState.Sanitize((float)v); return true; }
            if (KeyIs(ks, kl, "latency_ms")) { double v; if (!ReadNumberLoose(out v)) return false; scratch.LatencyMs = (float)v; return true; }
            if (KeyIs(ks, kl, "voice")) return ReadBoolLoose(out scratch.Voice);
            if (KeyIs(ks, kl, "final")) return ReadBoolLoose(out scratch.Final);
            if (KeyIs(ks, kl, "probs")) return ReadValues(EmotionState.SetProbs, false);
            if (KeyIs(ks, kl, "weights")) return ReadValues(EmotionState.SetWeights, true);
            if (KeyIs(ks, kl, "labels")) { hasLabels = true; return ReadStringArray(labelsRead); }
            if (KeyIs(ks, kl, "streams")) { hasStreams = true; return ReadStringArray(streamsRead); }
            if (KeyIs(ks, kl, "kind")) { eventTouched = true; string s; if (!ReadStringOrNull(out s)) return false; eventScratch.Kind = s ?? ""; return true; }
            if (KeyIs(ks, kl, "time")) { eventTouched = true; return ReadNumberLoose(out eventScratch.Time); }
            if (KeyIs(ks, kl, "evidence")) { eventTouched = true; return ReadValues(null, false, eventScratch); }
            return SkipValue(1);
        }

        /// <summary>
        /// An object of name: number into a set; with nested, name: {name: number} into set "name" (the daemon's
        /// weights); with evidence, name: number or name: "text" into that event's evidence (a mood event's).
        /// </summary>
        bool ReadValues(string set, bool nested, MoodEvent evidence = null)
        {
            SkipWs();
            if (pos < end && d[pos] == 'n') return Literal("null");
            if (pos >= end || d[pos] != '{') return SkipValue(1);
            pos++;
            SkipWs();
            if (pos < end && d[pos] == '}') { pos++; return true; }
            while (true)
            {
                string name;
                SkipWs();
                if (pos >= end || d[pos] != '"') return Fail("expected a key");
                if (!ReadString(out name)) return false;
                if (!Expect((byte)':')) return false;
                SkipWs();
                if (pos >= end) return Fail("unexpected end");
                byte c = d[pos];
                if (c == '-' || (c >= '0' && c <= '9'))
                {
                    double v;
                    if (!ReadNumber(out v)) return false;
                    if (evidence != null) evidence.SetNumber(name, v);
                    else scratch.SetValue(set, name, (float)v);
                }
                else if (nested && c == '{')
                {
                    if (!ReadValues(name, false)) return false;
                }
                else if (evidence != null && c == '"')
                {
                    string text;
                    if (!ReadString(out text)) return false;
                    evidence.SetText(name, text);
                }
                else if (!SkipValue(2)) return false;
                SkipWs();
                if (pos >= end) return Fail("unterminated object");
                c = d[pos++];
                if (c == '}') return true;
                if (c != ',') return Fail("expected , or }");
            }
        }

        bool ReadStringArray(List<string> into)
        {
            SkipWs();
            if (pos >= end || d[pos] != '[') return SkipValue(1);
            pos++;
            SkipWs();
            if (pos < end && d[pos] == ']') { pos++; return true; }
            while (true)
            {
                SkipWs();
                if (pos < end && d[pos] == '"')
                {
                    string s;
                    if (!ReadString(out s)) return false;
                    if (into.Count < StreamStates.MaxStreams * 64) into.Add(s);
                }
                else if (!SkipValue(2)) return false;
                SkipWs();
                if (pos >= end) return Fail("unterminated array");
                byte c = d[pos++];
                if (c == ']') return true;
                if (c != ',') return Fail("expected , or ]");
            }
        }

        bool ReadStringOrNull(out string s)
        {
            s = null;
            SkipWs();
            if (pos < end && d[pos] == '"') return ReadString(out s);
            return SkipValue(1);
        }

        bool ReadNumberLoose(out double v)
        {
            v = 0;
            SkipWs();
            if (pos < end && (d[pos] == '-' || (d[pos] >= '0' && d[pos] <= '9'))) return ReadNumber(out v);
            if (pos < end && d[pos] == 't') { v = 1; return Literal("true"); }
            return SkipValue(1);
        }

        bool ReadBoolLoose(out bool b)
        {
            b = false;
            SkipWs();
            if (pos < end && d[pos] == 't') { b = true; return Literal("true"); }
            if (pos < end && (d[pos] == '-' || (d[pos] >= '0' && d[pos] <= '9')))
            {
                double v;
                if (!ReadNumber(out v)) return false;
                b = v != 0;
                return true;
            }
            return SkipValue(1);
        }

        bool Literal(string word)
        {
            if (end - pos < word.Length) return Fail("bad literal");
            for (int i = 0; i < word.Length; i++) if (d[pos + i] != word[i]) return Fail("bad literal");
            pos += word.Length;
            return true;
        }

        /// <summary>A JSON number, parsed in place (no substring): enough precision for 0..1 weights and ids.</summary>
        bool ReadNumber(out double value)
        {
            value = 0;
            int start = pos;
            bool neg = false;
            if (pos < end && d[pos] == '-') { neg = true; pos++; }
            if (pos >= end || d[pos] < '0' || d[pos] > '9') return Fail("bad number");
            double mant = 0;
            int exp10 = 0, digits = 0;
            while (pos < end && d[pos] >= '0' && d[pos] <= '9')
            {
                if (digits < 18) { mant = mant * 10 + (d[pos] - '0'); digits++; } else exp10++;
                pos++;
            }
            if (pos < end && d[pos] == '.')
            {
                pos++;
                if (pos >= end || d[pos] < '0' || d[pos] > '9') return Fail("bad number");
                while (pos < end && d[pos] >= '0' && d[pos] <= '9')
                {
                    if (digits < 18) { mant = mant * 10 + (d[pos] - '0'); digits++; exp10--; }
                    pos++;
                }
            }
            if (pos < end && (d[pos] == 'e' || d[pos] == 'E'))
            {
                pos++;
                bool eneg = false;
                if (pos < end && (d[pos] == '+' || d[pos] == '-')) { eneg = d[pos] == '-'; pos++; }
                if (pos >= end || d[pos] < '0' || d[pos] > '9') return Fail("bad number");
                int e = 0;
                while (pos < end && d[pos] >= '0' && d[pos] <= '9') { if (e < 10000) e = e * 10 + (d[pos] - '0'); pos++; }
                exp10 += eneg ? -e : e;
            }
            if (pos - start > 64) return Fail("number too long");
            value = exp10 == 0 ? mant : mant * Math.Pow(10, exp10);
            if (neg) value = -value;
            return true;
        }

        bool ReadString(out string s)
        {
            s = null;
            pos++; // opening quote
            int start = pos;
            while (pos < end && d[pos] != '"' && d[pos] != '\\') pos++;
            if (pos >= end) return Fail("unterminated string");
            if (d[pos] == '"')
            {
                s = strings.Get(d, start, pos - start);
                pos++;
                return true;
            }
            // Escapes: the daemon's JSON writes every non-ASCII character as \uXXXX, so a stream id like
            // "mikrofon-ü" arrives escaped in every state. The raw bytes up to the closing quote are the
            // cache key: decoded once, then found again without allocating.
            int close = pos;
            while (close < end && d[close] != '"') close += d[close] == '\\' ? 2 : 1;
            string cached;
            if (close < end && strings.TryGet(d, start, close - start, out cached)) { s = cached; pos = close + 1; return true; }
            pos = start;
            int n = 0;
            while (pos < end)
            {
                byte c = d[pos];
                if (c == '"') { s = strings.Lookup(d, start, pos - start, new string(chars, 0, n)); pos++; return true; }
                if (n + 2 > chars.Length) Array.Resize(ref chars, chars.Length * 2);
                if (c != '\\')
                {
                    if (c < 0x80) { chars[n++] = (char)c; pos++; continue; }
                    // A UTF-8 sequence: decode it as a whole.
                    int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
                    if (pos + len > end) return Fail("bad UTF-8");
                    string part = Encoding.UTF8.GetString(d, pos, len);
                    for (int i = 0; i < part.Length; i++) chars[n++] = part[i];
                    pos += len;
                    continue;
                }
                pos++;
                if (pos >= end) break;
                byte e = d[pos++];
                switch (e)
                {
                    case (byte)'"': chars[n++] = '"'; break;
                    case (byte)'\\': chars[n++] = '\\'; break;
                    case (byte)'/': chars[n++] = '/'; break;
                    case (byte)'b': chars[n++] = '\b'; break;
                    case (byte)'f': chars[n++] = '\f'; break;
                    case (byte)'n': chars[n++] = '\n'; break;
                    case (byte)'r': chars[n++] = '\r'; break;
                    case (byte)'t': chars[n++] = '\t'; break;
                    case (byte)'u':
                        if (pos + 4 > end) return Fail("bad \\u escape");
                        int code = 0;
                        for (int i = 0; i < 4; i++)
                        {
                            int h = Hex(d[pos + i]);
                            if (h < 0) return Fail("bad \\u escape");
                            code = code * 16 + h;
                        }
                        chars[n++] = (char)code;
                        pos += 4;
                        break;
                    default: return Fail("bad escape");
                }
            }
            return Fail("unterminated string");
        }

        static int Hex(byte c)
        {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            return -1;
        }

        /// <summary>Skip any JSON value (checked, bounded depth).</summary>
        bool SkipValue(int depth)
        {
            if (depth > MaxDepth) return Fail("nested too deep");
            SkipWs();
            if (pos >= end) return Fail("unexpected end");
            byte c = d[pos];
            switch (c)
            {
                case (byte)'"': return SkipString();
                case (byte)'t': return Literal("true");
                case (byte)'f': return Literal("false");
                case (byte)'n': return Literal("null");
                case (byte)'{':
                case (byte)'[':
                {
                    bool obj = c == '{';
                    byte close = obj ? (byte)'}' : (byte)']';
                    pos++;
                    SkipWs();
                    if (pos < end && d[pos] == close) { pos++; return true; }
                    while (true)
                    {
                        if (obj)
                        {
                            SkipWs();
                            if (pos >= end || d[pos] != '"') return Fail("expected a key");
                            if (!SkipString() || !Expect((byte)':')) return false;
                        }
                        if (!SkipValue(depth + 1)) return false;
                        SkipWs();
                        if (pos >= end) return Fail("unterminated " + (obj ? "object" : "array"));
                        byte x = d[pos++];
                        if (x == close) return true;
                        if (x != ',') return Fail("expected , or " + (char)close);
                    }
                }
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) { double v; return ReadNumber(out v); }
                    return Fail("unexpected character");
            }
        }

        bool SkipString()
        {
            pos++;
            while (pos < end)
            {
                byte c = d[pos++];
                if (c == '"') return true;
                if (c == '\\')
                {
                    if (pos >= end) break;
                    byte e = d[pos++];
                    if (e == 'u')
                    {
                        if (pos + 4 > end) return Fail("bad \\u escape");
                        for (int i = 0; i < 4; i++) if (Hex(d[pos + i]) < 0) return Fail("bad \\u escape");
                        pos += 4;
                    }
                    else if ("\"\\/bfnrt".IndexOf((char)e) < 0) return Fail("bad escape");
                }
            }
            return Fail("unterminated string");
        }
    }
}
