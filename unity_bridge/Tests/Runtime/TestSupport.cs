// Shared by the bridge's NUnit tests: a fake mesh and the daemon's generic OSC bundle.
using System;
using System.Collections.Generic;
using NUnit.Framework;

namespace SerDaemon.Bridge.Tests
{
    sealed class FakeMesh : IBlendshapeSink
    {
        public readonly List<string> Names = new List<string>();
        public readonly Dictionary<int, float> Weights = new Dictionary<int, float>();
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
        }

        public float Weight(string name)
        {
            float w;
            return Weights.TryGetValue(Names.IndexOf(name), out w) ? w : 0f;
        }
    }

    static class Samples
    {
        public static byte[] GenericBundle(string prefix = "/ser")
        {
            return OscWriter.Bundle(
                OscWriter.Message(prefix + "/state", "happy", 0.71f),
                OscWriter.Message(prefix + "/emotion/happy", 0.71f),
                OscWriter.Message(prefix + "/emotion/neutral", 0.05f),
                OscWriter.Message(prefix + "/voice", 1),
                OscWriter.Message(prefix + "/seq", 12),
                OscWriter.Message(prefix + "/vrm/happy", 0.8f));
        }

        public static OscPacket Parse(byte[] data)
        {
            OscPacket p;
            string err;
            Assert.IsTrue(OscPacket.TryParse(data, out p, out err), err);
            return p;
        }

        public static void Near(float expected, float actual, float eps = 0.01f, string what = "")
        {
            Assert.AreEqual(expected, actual, eps, what);
        }

        public static byte[] Rev(byte[] b) { Array.Reverse(b); return b; }
    }
}
