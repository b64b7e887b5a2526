// A mood event from ser-daemon (--mood): "frustration_rising", "disengaging", "delighted", "recovered" (plain C#).
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace SerDaemon.Bridge
{
    /// <summary>
    /// One "event" message of the daemon's WebSocket (see ser_daemon/schema/messages.schema.json): which
    /// kind fired, for which stream, at which stream time, and its evidence, the figures behind it (e.g.
    /// "valence_minute", "arousal_minute", "valence_minute_before" for frustration_rising), so an app can
    /// log why it acted. Numbers are in Evidence; text values (disengaging's "reason") in EvidenceText.
    /// WsStateDecoder fills one of these in place (names from its string cache, dictionaries reused), so
    /// an event costs no allocation once its names have been seen: copy what you keep past the next event.
    /// </summary>
    public sealed class MoodEvent
    {
        public const string FrustrationRising = "frustration_rising";
        public const string Disengaging = "disengaging";
        public const string Delighted = "delighted";
        public const string Recovered = "recovered";

        /// <summary>Most evidence entries kept (the daemon sends about 10; a sender inventing names cannot grow it).</summary>
        public const int MaxEvidence = 64;

        /// <summary>One of the constants above (or a kind a newer daemon added).</summary>
        public string Kind = "";
        /// <summary>The daemon's stream id ("mic", a file stem, ...).</summary>
        public string Stream = "";
        /// <summary>Stream time at which it fired: seconds of audio since the stream started.</summary>
        public double Time;
        public readonly Dictionary<string, double> Evidence = new Dictionary<string, double>(StringComparer.Ordinal);
        public readonly Dictionary<string, string> EvidenceText = new Dictionary<string, string>(StringComparer.Ordinal);

        public bool Is(string kind) { return string.Equals(Kind, kind, StringComparison.Ordinal); }

        /// <summary>A figure of the evidence, or <paramref name="missing"/> when the daemon did not send it (or sent null).</summary>
        public double Figure(string name, double missing = double.NaN)
        {
            double v;
            return name != null && Evidence.TryGetValue(name, out v) ? v : missing;
        }

        /// <summary>A text value of the evidence (disengaging's "reason": "silence" or "low_arousal"), or null.</summary>
        public string Text(string name)
        {
            string v;
            return name != null && EvidenceText.TryGetValue(name, out v) ? v : null;
        }

        internal void Clear()
        {
            Kind = ""; Stream = ""; Time = 0;
            Evidence.Clear(); EvidenceText.Clear();
        }

        internal void SetNumber(string name, double value)
        {
            if (name == null || name.Length > EmotionState.MaxNameLength) return;
            if (Evidence.Count + EvidenceText.Count >= MaxEvidence && !Evidence.ContainsKey(name)) return;
            Evidence[name] = value;
        }

        internal void SetText(string name, string value)
        {
            if (name == null || value == null || name.Length > EmotionState.MaxNameLength) return;
            if (Evidence.Count + EvidenceText.Count >= MaxEvidence && !EvidenceText.ContainsKey(name)) return;
            EvidenceText[name] = value;
        }

        /// <summary>A new copy, for keeping an event past the decoder's next one.</summary>
        public MoodEvent Clone()
        {
            var e = new MoodEvent { Kind = Kind, Stream = Stream, Time = Time };
            foreach (var kv in Evidence) e.Evidence[kv.Key] = kv.Value;
            foreach (var kv in EvidenceText) e.EvidenceText[kv.Key] = kv.Value;
            return e;
        }

        /// <summary>"frustration_rising stream=mic time=6.75 valence_minute=-0.356 ..." (allocates: for logs).</summary>
        public override string ToString()
        {
            var sb = new StringBuilder();
            sb.Append(Kind).Append(" stream=").Append(Stream).Append(" time=").Append(Time.ToString("R", CultureInfo.InvariantCulture));
            var names = new List<string>(Evidence.Keys);
            names.AddRange(EvidenceText.Keys);
            names.Sort(StringComparer.Ordinal);
            foreach (var n in names)
            {
                string text;
                sb.Append(' ').Append(n).Append('=');
                if (EvidenceText.TryGetValue(n, out text)) sb.Append(text);
                else sb.Append(Evidence[n].ToString("R", CultureInfo.InvariantCulture));
            }
            return sb.ToString();
        }
    }
}
