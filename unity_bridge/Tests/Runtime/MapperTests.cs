// BlendshapeMapper: bindings, 0..100 scale, smoothing, names the mesh lacks, robustness.
using System;
using System.Collections.Generic;
using NUnit.Framework;

namespace SerDaemon.Bridge.Tests
{
    [TestFixture]
    public class MapperTests
    {
        static BlendshapeMapper LabelMapper(FakeMesh mesh, List<string> missing)
        {
            mesh.Names.AddRange(new[] { "Joy", "Angry", "Sorrow", "fun" });
            var m = new BlendshapeMapper(mesh) { SmoothingSeconds = 0f, WeightScale = 100f, PassThrough = false };
            m.MissingName = n => missing.Add(n);
            m.Bindings.Add(new BlendshapeBinding("happy", "Joy"));
            m.Bindings.Add(new BlendshapeBinding("angry", "Angry"));
            m.Bindings.Add(new BlendshapeBinding("disgust", "Angry", 0.5f));
            m.Bindings.Add(new BlendshapeBinding("calm", "Fun"));          // case-insensitive fallback to "fun"
            m.Bindings.Add(new BlendshapeBinding("surprised", "Surprised")); // not on the mesh
            m.Bindings.Add(new BlendshapeBinding("sad", "Blink"));          // not on the mesh
            m.SetSources(new Dictionary<string, float> { { "happy", 0.5f }, { "angry", 0.8f }, { "disgust", 0.8f }, { "calm", 0.3f }, { "surprised", 1f } });
            return m;
        }

        [Test]
        public void ScaleGainsAndCaseFallback()
        {
            var mesh = new FakeMesh();
            var m = LabelMapper(mesh, new List<string>());
            m.Update(0.016f);
            Samples.Near(50f, mesh.Weight("Joy"));
            Samples.Near(50f, m.GetWeight("Joy"));
            Samples.Near(100f, mesh.Weight("Angry"), 0.01f, "0.8 + 0.4 clamped to 1");
            Samples.Near(30f, mesh.Weight("fun"));
        }

        [Test]
        public void MissingReportedOnceAndWritesOnlyOnChange()
        {
            var mesh = new FakeMesh();
            var missing = new List<string>();
            var m = LabelMapper(mesh, missing);
            for (int k = 0; k < 50; k++) m.Update(0.016f);
            Assert.IsTrue(missing.Count == 2 && missing.Contains("Surprised") && missing.Contains("Blink"), string.Join(",", missing.ToArray()));
            int writes = mesh.Writes;
            for (int k = 0; k < 10; k++) m.Update(0.016f);
            Assert.AreEqual(writes, mesh.Writes, "no writes while nothing changes");
            m.WriteEveryFrame = true;
            m.Update(0.016f);
            Assert.AreEqual(writes + 3, mesh.Writes, "WriteEveryFrame writes every driven blendshape the mesh has (Joy, Angry, fun)");
        }

        [Test]
        public void NanRangeAndCustomScale()
        {
            var mesh = new FakeMesh();
            var m = LabelMapper(mesh, new List<string>());
            m.Update(0.016f);
            m.SetSource("happy", float.NaN);
            m.SetSource("angry", 7f);
            m.Update(0.016f);
            Samples.Near(0f, mesh.Weight("Joy"));
            Samples.Near(100f, mesh.Weight("Angry"));
            m.WeightScale = 1f;
            m.SetSources(new Dictionary<string, float> { { "happy", 1f } });
            m.Update(0.016f);
            Samples.Near(1f, mesh.Weight("Joy"), 1e-4f);
            Samples.Near(0f, mesh.Weight("Angry"));
        }

        [Test]
        public void InfiniteOrNanGainNeverLeavesNaN()
        {
            var mesh = new FakeMesh();
            mesh.Names.Add("Joy");
            var m = new BlendshapeMapper(mesh) { SmoothingSeconds = 0.1f, PassThrough = false };
            m.Bindings.Add(new BlendshapeBinding("happy", "Joy", float.PositiveInfinity));
            m.Bindings.Add(new BlendshapeBinding("calm", "Joy", float.NaN));
            m.SetSource("happy", 0f); // infinity * 0 = NaN
            for (int k = 0; k < 5; k++) m.Update(0.016f);
            m.SetSource("happy", 1f);
            for (int k = 0; k < 5; k++) m.Update(0.016f);
            Assert.IsFalse(float.IsNaN(mesh.Weight("Joy")) || float.IsNaN(m.GetWeight("Joy")), "weight " + mesh.Weight("Joy"));
            m.Bindings[0].Gain = 1f;
            for (int k = 0; k < 100; k++) m.Update(0.016f);
            Samples.Near(100f, mesh.Weight("Joy"), 0.1f, "recovers once the gain is finite");
            m.WeightScale = float.PositiveInfinity;
            m.Update(0.016f);
            Assert.IsFalse(float.IsNaN(mesh.Weight("Joy")) || float.IsInfinity(mesh.Weight("Joy")));
        }

        [Test]
        public void Smoothing()
        {
            // Time constant 0.1 s; a step 0 -> 1 reaches 1 - e^-1 = 63.2% after 0.1 s, ~100% after 1 s.
            var mesh = new FakeMesh();
            mesh.Names.Add("Joy");
            var s = new BlendshapeMapper(mesh) { SmoothingSeconds = 0.1f, PassThrough = true };
            s.SetSource("Joy", 1f);
            s.Update(0.1f);
            Samples.Near(63.21f, mesh.Weight("Joy"), 0.05f, "one tau");
            for (int k = 0; k < 10; k++) s.Update(0.05f); // frame-rate independent: 10 x 0.05 s = 0.5 s more
            float expect = 100f * (1f - (float)Math.Exp(-6.0));
            Samples.Near(expect, mesh.Weight("Joy"), 0.05f, "converges");
            s.ClearSources();
            s.Update(0.1f);
            Samples.Near(expect * (float)Math.Exp(-1.0), mesh.Weight("Joy"), 0.05f, "decays");
        }

        [Test]
        public void PassThroughMissingOnceAndRebind()
        {
            var mesh = new FakeMesh();
            mesh.Names.Add("Joy");
            var s = new BlendshapeMapper(mesh) { SmoothingSeconds = 0.1f, PassThrough = true };
            int fired = 0;
            s.MissingName = n => fired++;
            s.SetSource("Unknown", 1f);
            for (int k = 0; k < 100; k++) s.Update(0.01f);
            Assert.AreEqual(1, fired);
            s.Rebind();
            s.Update(0.01f); s.Update(0.01f);
            Assert.AreEqual(2, fired, "Rebind forgets the reported names");
        }

        [Test]
        public void SinkErrorsContained()
        {
            var mesh = new FakeMesh { Throw = true };
            mesh.Names.Add("Joy");
            int errors = 0;
            var e = new BlendshapeMapper(mesh) { Error = x => errors++ };
            e.SetSource("Joy", 1f);
            for (int k = 0; k < 20; k++) e.Update(0.016f);
            Assert.AreEqual(1, errors);
        }

        [Test]
        public void ResetPutsTheFaceAtRestAtOnce()
        {
            var mesh = new FakeMesh();
            mesh.Names.AddRange(new[] { "Joy", "Angry" });
            var m = new BlendshapeMapper(mesh) { SmoothingSeconds = 0.5f, PassThrough = true };
            m.SetSources(new Dictionary<string, float> { { "Joy", 1f }, { "Angry", 0.5f } });
            for (int k = 0; k < 100; k++) m.Update(0.016f);
            Assert.Greater(mesh.Weight("Joy"), 90);
            m.Reset();
            Assert.AreEqual(0f, mesh.Weight("Joy"));
            Assert.AreEqual(0f, mesh.Weight("Angry"));
            Assert.AreEqual(0f, m.GetWeight("Joy"));
        }
    }
}
