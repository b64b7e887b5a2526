// Mood events (--mood) through the allocation-free WsStateDecoder: fields, evidence, bad input, allocation.
using System;
using System.Text;
using NUnit.Framework;

namespace SerDaemon.Bridge.Tests
{
    [TestFixture]
    public class MoodEventTests
    {
        // As the daemon writes them (ser_daemon/outputs/mood_messages.py); the end-to-end test feeds real ones.
        const string Frustration = "{\"type\":\"event\",\"protocol\":1,\"stream\":\"mic\",\"kind\":\"frustration_rising\",\"time\":6.75," +
            "\"evidence\":{\"valence_minute\":-0.356,\"arousal_minute\":0.356,\"valence_minute_before\":-0.2882,\"trend_s\":30.0," +
            "\"valence_moment\":-0.4074,\"voiced_s_minute\":5.75,\"share_angry\":0.4783,\"share_neutral\":0.5217}}";
        const string Quiet = "{\"type\":\"event\",\"protocol\":1,\"stream\":\"bob\",\"kind\":\"disengaging\",\"time\":90.5," +
            "\"evidence\":{\"reason\":\"silence\",\"silent_share\":0.85,\"silent_share_before\":null,\"window_s\":120.0,\"nested\":{\"x\":[1]}}}";
        const string Mood = "{\"type\":\"mood\",\"protocol\":1,\"stream\":\"mic\",\"time\":6.0,\"voice\":true,\"valence\":{\"moment\":0.0658,\"minute\":null}}";

        static bool Decode(WsStateDecoder d, string json)
        {
            var b = Encoding.UTF8.GetBytes(json);
            return d.Decode(b, b.Length);
        }

        [Test]
        public void FrustrationRisingWithItsEvidence()
        {
            var d = new WsStateDecoder();
            Assert.IsNull(d.LastEvent);
            Assert.IsTrue(Decode(d, Frustration), d.LastError);
            var e = d.LastEvent;
            Assert.AreEqual("event", d.LastType);
            Assert.IsNull(d.LastState, "an event is not a state");
            Assert.IsTrue(e.Is(MoodEvent.FrustrationRising) && e.Stream == "mic");
            Assert.AreEqual(6.75, e.Time, 1e-9);
            Assert.AreEqual(-0.356, e.Figure("valence_minute"), 1e-9);
            Assert.AreEqual(-0.2882, e.Figure("valence_minute_before"), 1e-9);
            Assert.AreEqual(0.4783, e.Figure("share_angry"), 1e-9);
            Assert.AreEqual(8, e.Evidence.Count);
            Assert.IsTrue(double.IsNaN(e.Figure("absent")));
            Assert.AreEqual(0, d.Streams.Count, "events make no emotion state");
        }

        [Test]
        public void TextNullAndNestedEvidence()
        {
            var d = new WsStateDecoder();
            Assert.IsTrue(Decode(d, Quiet), d.LastError);
            var e = d.LastEvent;
            Assert.IsTrue(e.Is(MoodEvent.Disengaging) && e.Stream == "bob" && e.Text("reason") == "silence");
            Assert.AreEqual(0.85, e.Figure("silent_share"), 1e-9);
            Assert.IsTrue(double.IsNaN(e.Figure("silent_share_before")), "null is not a figure");
            Assert.IsTrue(double.IsNaN(e.Figure("nested")));
            Assert.AreEqual(2, e.Evidence.Count);
            StringAssert(e.ToString(), "disengaging stream=bob time=90.5 reason=silence silent_share=0.85 window_s=120");
        }

        static void StringAssert(string actual, string expected) { Assert.AreEqual(expected, actual); }

        [Test]
        public void NextMessagesLeaveTheLastEventWhole()
        {
            var d = new WsStateDecoder();
            Assert.IsTrue(Decode(d, Frustration));
            var kept = d.LastEvent.Clone();
            // A mood message, a state and a broken event do not touch it.
            Assert.IsTrue(Decode(d, Mood), d.LastError);
            Assert.IsTrue(Decode(d, "{\"type\":\"state\",\"stream\":\"mic\",\"label\":\"angry\",\"time\":7.0}"), d.LastError);
            for (int n = 1; n < Quiet.Length - 1; n += 7) Assert.IsFalse(Decode(d, Quiet.Substring(0, n)), "prefix " + n);
            Assert.IsTrue(d.LastEvent.Is(MoodEvent.FrustrationRising) && d.LastEvent.Time == 6.75);
            Assert.AreEqual(kept.ToString(), d.LastEvent.ToString());
            // The next event replaces it, without leftovers of the one before.
            Assert.IsTrue(Decode(d, Quiet));
            Assert.IsTrue(d.LastEvent.Is(MoodEvent.Disengaging) && double.IsNaN(d.LastEvent.Figure("share_angry")));
            Assert.IsTrue(kept.Is(MoodEvent.FrustrationRising) && kept.Figure("share_angry") == 0.4783, "a clone is the caller's");
        }

        [Test]
        public void EvidenceBounded()
        {
            var sb = new StringBuilder("{\"type\":\"event\",\"stream\":\"s\",\"kind\":\"delighted\",\"time\":1,\"evidence\":{");
            for (int k = 0; k < 500; k++) sb.Append(k > 0 ? "," : "").Append("\"n").Append(k).Append("\":").Append(k);
            sb.Append("}}");
            var d = new WsStateDecoder();
            Assert.IsTrue(Decode(d, sb.ToString()), d.LastError);
            Assert.AreEqual(MoodEvent.MaxEvidence, d.LastEvent.Evidence.Count);
        }

        [Test]
        public void EventsDecodeWithoutAllocating()
        {
            var d = new WsStateDecoder();
            var a = Encoding.UTF8.GetBytes(Frustration);
            var b = Encoding.UTF8.GetBytes(Quiet);
            for (int i = 0; i < 50; i++) { d.Decode(a, a.Length); d.Decode(b, b.Length); }
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 500; i++)
            {
                d.Decode(a, a.Length);
                d.Decode(b, b.Length);
            }
            long perEvent = (GC.GetAllocatedBytesForCurrentThread() - before) / 1000;
            Assert.AreEqual(0L, perEvent, "bytes allocated per event");
            Assert.IsTrue(d.LastEvent.Is(MoodEvent.Disengaging));
        }
    }
}
