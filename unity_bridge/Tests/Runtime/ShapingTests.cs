// BlendshapeMapper's shaping: deadzone (rest is exactly 0), gain, normalisation, dominant-only, IsBinary targets.
using System.Collections.Generic;
using NUnit.Framework;

namespace SerDaemon.Bridge.Tests
{
    /// <summary>A fake mesh whose expressions can be IsBinary, with notes, as the VRM drivers' sinks report them.</summary>
    sealed class FakeExpressions : IBlendshapeSink, IExpressionInfo
    {
        public readonly FakeMesh Mesh = new FakeMesh();
        public readonly HashSet<string> Binary = new HashSet<string>();
        public int GetIndex(string name) { return Mesh.GetIndex(name); }
        public int Count { get { return Mesh.Count; } }
        public string GetName(int i) { return Mesh.GetName(i); }
        public void SetWeight(int i, float w) { Mesh.SetWeight(i, w); }
        public bool IsBinary(int i) { return Binary.Contains(Mesh.Names[i]); }
        public string Note(int i) { return IsBinary(i) ? Mesh.Names[i] + " is binary" : null; }
    }

    [TestFixture]
    public class ShapingTests
    {
        static BlendshapeMapper Mapper(IBlendshapeSink sink)
        {
            return new BlendshapeMapper(sink) { SmoothingSeconds = 0f, WeightScale = 1f, PassThrough = true };
        }

        static Dictionary<string, float> Values(params object[] kv)
        {
            var d = new Dictionary<string, float>();
            for (int i = 0; i < kv.Length; i += 2) d[(string)kv[i]] = (float)(double)kv[i + 1];
            return d;
        }

        [Test]
        public void DeadzoneMakesRestExactlyZero()
        {
            // The daemon at rest: relaxed 0.003-0.012, sad up to 0.06 (the sample recording), neutral near 1.
            var mesh = new FakeMesh();
            mesh.Names.AddRange(new[] { "relaxed", "sad", "neutral", "angry" });
            var m = Mapper(mesh);
            m.SmoothingSeconds = 0.15f;
            m.Deadzone = 0.1f;
            m.SetSources(Values("relaxed", 0.012, "sad", 0.0589, "neutral", 0.95, "angry", 0.55));
            for (int k = 0; k < 200; k++) m.Update(0.016f);
            Assert.AreEqual(0f, mesh.Weight("relaxed"), "below the deadzone: exactly 0, not 0.0001");
            Assert.AreEqual(0f, mesh.Weight("sad"));
            Samples.Near(0.5f, mesh.Weight("angry"), 1e-4f, "(0.55 - 0.1) / 0.9: stretched, no jump at the edge");
            Samples.Near(0.9444f, mesh.Weight("neutral"), 1e-3f);
            // Decay from a shown emotion also lands on exactly 0, not an asymptote.
            m.SetSources(Values("angry", 0.05));
            for (int k = 0; k < 200; k++) m.Update(0.016f);
            Assert.AreEqual(0f, mesh.Weight("angry"));
            // Without the deadzone the old behaviour: rest values pass through.
            m.Deadzone = 0f;
            m.SetSources(Values("relaxed", 0.012));
            for (int k = 0; k < 200; k++) m.Update(0.016f);
            Assert.Greater(mesh.Weight("relaxed"), 0f);
        }

        [Test]
        public void GainAndNormalizeReachFullWeight()
        {
            var mesh = new FakeMesh();
            mesh.Names.AddRange(new[] { "angry", "happy", "neutral" });
            var m = Mapper(mesh);
            m.Deadzone = 0.05f;
            m.Gain = 4f;
            m.SetSources(Values("angry", 0.2355, "happy", 0.04, "neutral", 0.78));
            m.Update(0.016f);
            Samples.Near((0.2355f - 0.05f) / 0.95f * 4f, mesh.Weight("angry"), 1e-4f, "gain after the deadzone");
            Assert.AreEqual(0f, mesh.Weight("happy"));
            Samples.Near(1f, mesh.Weight("neutral"), 1e-4f, "clamped to 1");
            m.Gain = 1f;
            m.NormalizeToPeak = true;
            m.SetSources(Values("angry", 0.2355, "happy", 0.12, "neutral", 0.78));
            m.Update(0.016f);
            Samples.Near(1f, mesh.Weight("angry"), 1e-4f, "the strongest emotion reaches full weight");
            Samples.Near((0.12f - 0.05f) / (0.2355f - 0.05f), mesh.Weight("happy"), 1e-3f, "the others keep their proportion");
            Samples.Near((0.78f - 0.05f) / 0.95f, mesh.Weight("neutral"), 1e-3f, "neutral is not an emotion: not scaled");
            m.SetSources(Values("angry", 0.03, "neutral", 1.0));
            m.Update(0.016f);
            Assert.AreEqual(0f, mesh.Weight("angry"), "nothing above the deadzone: nothing is blown up");
        }

        [Test]
        public void DominantOnlyWithHysteresis()
        {
            var mesh = new FakeMesh();
            mesh.Names.AddRange(new[] { "angry", "happy", "sad", "Neutral" });
            var m = Mapper(mesh);
            m.DominantOnly = true;
            m.DominantMargin = 0.05f;
            m.SetSources(Values("angry", 0.5, "happy", 0.3, "sad", 0.2, "Neutral", 0.4));
            m.Update(0.016f);
            Samples.Near(0.5f, mesh.Weight("angry"), 1e-4f);
            Assert.AreEqual(0f, mesh.Weight("happy"));
            Assert.AreEqual(0f, mesh.Weight("sad"));
            Samples.Near(0.4f, mesh.Weight("Neutral"), 1e-4f, "neutral (any case) is left alone");
            m.SetSources(Values("angry", 0.5, "happy", 0.53, "Neutral", 0.4));
            m.Update(0.016f);
            Samples.Near(0.5f, mesh.Weight("angry"), 1e-4f, "happy leads by less than the margin: angry stays");
            Assert.AreEqual(0f, mesh.Weight("happy"));
            m.SetSources(Values("angry", 0.5, "happy", 0.6, "Neutral", 0.4));
            m.Update(0.016f);
            Assert.AreEqual(0f, mesh.Weight("angry"));
            Samples.Near(0.6f, mesh.Weight("happy"), 1e-4f, "a clear lead takes over");
        }

        [Test]
        public void BinaryTargetsWriteZeroOrOne()
        {
            var fx = new FakeExpressions();
            fx.Mesh.Names.AddRange(new[] { "angry", "happy", "neutral" });
            fx.Binary.Add("angry");
            fx.Binary.Add("happy");
            var notes = new List<string>();
            var m = Mapper(fx);
            m.Notice = n => notes.Add(n);
            m.Deadzone = 0.1f;
            m.BinaryThreshold = 0.1f;
            // 0.2355 is what the daemon's "angry" reaches on the sample recording; UniVRM would round it to 0.
            m.SetSources(Values("angry", 0.2355, "happy", 0.04, "neutral", 0.8));
            m.Update(0.016f);
            Assert.AreEqual(1f, fx.Mesh.Weight("angry"), "leads and above the threshold: exactly 1");
            Assert.AreEqual(0f, fx.Mesh.Weight("happy"));
            Samples.Near((0.8f - 0.1f) / 0.9f, fx.Mesh.Weight("neutral"), 1e-4f, "not binary: a fraction");
            m.SetSources(Values("angry", 0.16, "happy", 0.04, "neutral", 0.8)); // 0.067 after the deadzone: under 0.1, over half of it
            m.Update(0.016f);
            Assert.AreEqual(1f, fx.Mesh.Weight("angry"), "hysteresis: stays on above half the threshold");
            m.SetSources(Values("angry", 0.12, "neutral", 0.8)); // 0.022: off
            m.Update(0.016f);
            Assert.AreEqual(0f, fx.Mesh.Weight("angry"));
            m.SetSources(Values("angry", 0.4, "happy", 0.6));
            m.Update(0.016f);
            Assert.AreEqual(0f, fx.Mesh.Weight("angry"), "two binary expressions: only the leader is on");
            Assert.AreEqual(1f, fx.Mesh.Weight("happy"));
            Assert.AreEqual(2, notes.Count, string.Join(" | ", notes.ToArray()));
        }
    }
}
