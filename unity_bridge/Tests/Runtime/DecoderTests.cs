// OSC packets folded into per-stream states: the generic scheme, stream prefixes, VMC.
using NUnit.Framework;

namespace SerDaemon.Bridge.Tests
{
    [TestFixture]
    public class DecoderTests
    {
        [Test]
        public void Generic()
        {
            var d = new OscStateDecoder { Now = 2 };
            d.Apply(Samples.Parse(Samples.GenericBundle()));
            var s = d.State;
            Assert.IsTrue(s.Label == "happy" && s.Voice && s.Seq == 12 && d.Frames == 1 && s.Stream == "" && s.UpdatedAt == 2);
            Samples.Near(0.71f, s.Confidence);
            Samples.Near(0.71f, s.Probability("happy"));
            Samples.Near(0.8f, s.Values("vrm")["happy"]);
        }

        [Test]
        public void VmcWaitsForApply()
        {
            var d = new OscStateDecoder();
            d.Apply(Samples.Parse(OscWriter.Bundle(OscWriter.Message("/VMC/Ext/Blend/Val", "Joy", 0.4f), OscWriter.Message("/VMC/Ext/Blend/Val", "Angry", 2f))));
            Assert.IsNull(d.State.Values("vmc"));
            d.Apply(Samples.Parse(OscWriter.Message("/VMC/Ext/Blend/Apply")));
            var vmc = d.State.Values("vmc");
            Assert.IsNotNull(vmc);
            Samples.Near(0.4f, vmc["Joy"]);
            Samples.Near(1f, vmc["Angry"]);
            Assert.AreEqual(1L, d.Frames);
        }

        [Test]
        public void WrongTypesSafeAndNamesBounded()
        {
            var d = new OscStateDecoder();
            d.Apply(Samples.Parse(Samples.GenericBundle()));
            d.Apply(Samples.Parse(OscWriter.Message("/ser/state", 5, "x")));
            Assert.AreEqual("happy", d.State.Label);
            for (int k = 0; k < 2000; k++) d.Apply(Samples.Parse(OscWriter.Message("/VMC/Ext/Blend/Val", "n" + k, 0.5f)));
            d.Apply(Samples.Parse(OscWriter.Message("/VMC/Ext/Blend/Apply")));
            Assert.AreEqual(EmotionState.MaxNames, d.State.Values("vmc").Count);
            for (int k = 0; k < OscStateDecoder.MaxRoutes + 100; k++) d.Apply(Samples.Parse(OscWriter.Message("/ser/x" + k, 1)));
            Assert.AreEqual("happy", d.State.Label, "many distinct addresses: still decoding");
        }

        [Test]
        public void OneStatePerStream()
        {
            // With several streams the daemon prefixes: /ser/<stream>/state and so on.
            var d = new OscStateDecoder();
            d.Apply(Samples.Parse(OscWriter.Bundle(OscWriter.Message("/ser/alice/state", "angry", 0.9f),
                OscWriter.Message("/ser/alice/emotion/angry", 0.9f), OscWriter.Message("/ser/alice/seq", 4))));
            d.Apply(Samples.Parse(OscWriter.Bundle(OscWriter.Message("/ser/bob/state", "happy", 0.8f),
                OscWriter.Message("/ser/bob/emotion/happy", 0.8f), OscWriter.Message("/ser/bob/vrm/happy", 0.7f), OscWriter.Message("/ser/bob/seq", 9))));
            Assert.AreEqual(2, d.Streams.Count);
            var alice = d.Streams.Select("alice");
            var bob = d.Streams.Select("bob");
            Assert.IsTrue(alice.Label == "angry" && alice.Seq == 4 && bob.Label == "happy" && bob.Seq == 9);
            Assert.AreEqual(0f, alice.Probability("happy"));
            Assert.AreEqual(0f, bob.Probability("angry"));
            Assert.AreSame(alice, d.Streams.Select("first"));
            Assert.AreSame(alice, d.State);
            d.Apply(Samples.Parse(OscWriter.Message("/ser/bob/status", "no_audio")));
            Assert.IsTrue(bob.NoAudio && !alice.NoAudio);
        }

        [Test]
        public void StreamIdsMatchAsOscNames()
        {
            // The daemon writes "my mic" as /ser/my_mic/...; a face set to "my mic" still finds it.
            var d = new OscStateDecoder();
            d.Apply(Samples.Parse(OscWriter.Message("/ser/my_mic/state", "sad", 0.5f)));
            Assert.IsNotNull(d.Streams.Select("my mic"));
            Assert.IsNotNull(d.Streams.Select("my_mic"));
            Assert.IsNull(d.Streams.Select("other"));
        }

        [Test]
        public void StreamsBounded()
        {
            var d = new OscStateDecoder();
            for (int k = 0; k < StreamStates.MaxStreams + 10; k++) d.Apply(Samples.Parse(OscWriter.Message("/ser/s" + k + "/seq", k)));
            Assert.AreEqual(StreamStates.MaxStreams, d.Streams.Count);
        }
    }
}
