// The daemon's WebSocket JSON: the small tree reader (MiniJson / WsMessage) and the allocation-free
// WsStateDecoder, which must agree with it and keep one state per stream.
using System.Text;
using NUnit.Framework;

namespace SerDaemon.Bridge.Tests
{
    [TestFixture]
    public class JsonTests
    {
        const string State = "{\"type\":\"state\",\"protocol\":1,\"stream\":\"mic\",\"seq\":12,\"label\":\"happy\",\"confidence\":0.71," +
            "\"voice\":true,\"probs\":{\"neutral\":0.05,\"happy\":0.71},\"raw\":null,\"final\":false," +
            "\"weights\":{\"vrm0\":{\"Joy\":0.8},\"Angry\":0.25},\"name\":\"caf\\u00e9 \\\"q\\\"\",\"arr\":[1,-2.5e1,[],{}]}";

        [Test]
        public void TreeReaderState()
        {
            WsMessage m; string err;
            Assert.IsTrue(WsMessage.TryDecode(State, out m, out err), err);
            var s = m.State;
            Assert.IsTrue(s.Label == "happy" && s.Seq == 12 && s.Voice && s.Stream == "mic");
            Samples.Near(0.71f, s.Confidence);
            Samples.Near(0.05f, s.Probability("neutral"));
            Samples.Near(0.8f, s.Values("vrm0")["Joy"]);
            Samples.Near(0.25f, s.Values("weights")["Angry"]);
            Assert.AreEqual("caf\u00e9 \"q\"", MiniJson.Str(m.Json, "name"));
        }

        [Test]
        public void TreeReaderHelloAndRejections()
        {
            WsMessage m; string err;
            Assert.IsTrue(WsMessage.TryDecode("{\"type\":\"hello\",\"protocol\":1,\"labels\":[\"neutral\",\"angry\"]}", out m, out err));
            Assert.IsTrue(m.Type == "hello" && m.Labels.Length == 2 && m.Labels[1] == "angry");
            for (int n = 0; n < State.Length - 1; n++) Assert.IsFalse(WsMessage.TryDecode(State.Substring(0, n), out m, out err), "prefix " + n);
            object o;
            Assert.IsFalse(MiniJson.TryParse(new string('[', 5000) + new string(']', 5000), out o, out err));
            Assert.IsFalse(WsMessage.TryDecode("[1,2]", out m, out err));
            Assert.IsFalse(WsMessage.TryDecode("nope", out m, out err));
        }

        [Test]
        public void DecoderState()
        {
            var d = new WsStateDecoder { Now = 5 };
            Assert.IsTrue(d.Decode(State), d.LastError);
            var s = d.Streams.Select("mic");
            Assert.IsNotNull(s);
            Assert.IsTrue(s.Label == "happy" && s.Seq == 12 && s.Voice && !s.Final && s.UpdatedAt == 5 && s.Version == 1);
            Samples.Near(0.71f, s.Confidence);
            Samples.Near(0.05f, s.Probability("neutral"));
            Samples.Near(0.8f, s.Values("vrm0")["Joy"]);
            Samples.Near(0.25f, s.Values("weights")["Angry"]);
            Assert.AreSame(s, d.Streams.Select("first"));
        }

        [Test]
        public void DecoderAgreesWithTreeReader()
        {
            // Numbers in many spellings, escapes, unknown nested fields.
            string[] texts =
            {
                State,
                "{\"type\":\"state\",\"stream\":\"a b\",\"seq\":3,\"label\":\"sad\",\"confidence\":1e-1,\"voice\":false,\"final\":true," +
                "\"probs\":{\"sad\":9.5E-1,\"x\\ny\":-0.0,\"big\":12345678901234567890},\"weights\":{\"vrm\":{\"sad\":0.123456789}},\"extra\":{\"deep\":[[[{}]]]}}",
            };
            foreach (var t in texts)
            {
                WsMessage m; string err;
                Assert.IsTrue(WsMessage.TryDecode(t, out m, out err), err);
                var d = new WsStateDecoder();
                Assert.IsTrue(d.Decode(t), d.LastError);
                var a = m.State;
                var b = d.Streams.Select(a.Stream);
                Assert.IsTrue(a.Label == b.Label && a.Seq == b.Seq && a.Voice == b.Voice && a.Final == b.Final, t);
                Samples.Near(a.Confidence, b.Confidence, 1e-6f);
                foreach (var set in a.Sets)
                    foreach (var kv in set.Value)
                        Samples.Near(kv.Value, b.Values(set.Key)[kv.Key], 1e-6f, set.Key + "." + kv.Key);
            }
        }

        [Test]
        public void DecoderRejectsWithoutThrowingAndKeepsState()
        {
            var d = new WsStateDecoder();
            Assert.IsTrue(d.Decode(State));
            for (int n = 0; n < State.Length - 1; n++) Assert.IsFalse(d.Decode(State.Substring(0, n)), "prefix " + n);
            Assert.IsFalse(d.Decode(new string('[', 5000) + new string(']', 5000)));
            Assert.IsFalse(d.Decode("[1,2]"));
            Assert.IsFalse(d.Decode("{\"seq\":1}"), "no type");
            var rng = new System.Random(3);
            var bytes = Encoding.UTF8.GetBytes(State);
            for (int k = 0; k < 5000; k++)
            {
                var b = (byte[])bytes.Clone();
                for (int f = 0; f < 3; f++) b[rng.Next(b.Length)] = (byte)rng.Next(256);
                d.Decode(b, b.Length); // must not throw
            }
            Assert.IsTrue(d.Decode(State));
            Assert.AreEqual("happy", d.Streams.Select("mic").Label);
        }

        [Test]
        public void StreamsStatusAndHello()
        {
            var d = new WsStateDecoder { Now = 1 };
            Assert.IsTrue(d.Decode("{\"type\":\"hello\",\"labels\":[\"neutral\",\"happy\"],\"streams\":[\"b\",\"a\"]}"));
            Assert.AreEqual(2, d.Labels.Length);
            Assert.IsTrue(d.Decode("{\"type\":\"state\",\"stream\":\"a\",\"label\":\"angry\",\"probs\":{\"angry\":0.9}}"));
            Assert.AreEqual("a", d.Streams.Select("first").Stream, "only a heard so far");
            Assert.IsTrue(d.Decode("{\"type\":\"state\",\"stream\":\"b\",\"label\":\"happy\",\"probs\":{\"happy\":0.8}}"));
            Assert.AreEqual("b", d.Streams.Select("first").Stream, "the hello's order wins once b is heard");
            Assert.AreEqual("angry", d.Streams.Select("a").Label);
            Samples.Near(0f, d.Streams.Select("a").Probability("happy"), 0f, "streams do not mix");
            Assert.IsTrue(d.Decode("{\"type\":\"status\",\"protocol\":1,\"stream\":\"a\",\"status\":\"no_audio\",\"detail\":\"device gone\",\"time\":3.5}"));
            Assert.IsTrue(d.Streams.Select("a").NoAudio);
            Assert.IsFalse(d.Streams.Select("b").NoAudio);
            Assert.IsTrue(d.Decode("{\"type\":\"state\",\"stream\":\"a\",\"label\":\"neutral\"}"));
            Assert.IsTrue(d.Streams.Select("a").NoAudio, "a state does not clear the input status");
            Assert.IsTrue(d.Decode("{\"type\":\"status\",\"stream\":\"a\",\"status\":\"capturing\"}"));
            Assert.IsFalse(d.Streams.Select("a").NoAudio);
            Assert.IsNull(d.Streams.Select("nobody"));
        }

        [Test]
        public void StateReplacesValuesOfItsStream()
        {
            var d = new WsStateDecoder();
            Assert.IsTrue(d.Decode("{\"type\":\"state\",\"stream\":\"a\",\"probs\":{\"happy\":0.8,\"sad\":0.1}}"));
            Assert.IsTrue(d.Decode("{\"type\":\"state\",\"stream\":\"a\",\"probs\":{\"sad\":0.5}}"));
            var v = d.Streams.Select("a").Values("probs");
            Assert.IsFalse(v.ContainsKey("happy"), "names missing from the new state are gone");
            Samples.Near(0.5f, v["sad"]);
        }
    }
}
