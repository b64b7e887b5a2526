// OSC 1.0 parsing: messages, bundles, odd type tags, and input that must be refused without throwing.
using System;
using System.Collections.Generic;
using System.Text;
using NUnit.Framework;

namespace SerDaemon.Bridge.Tests
{
    [TestFixture]
    public class OscTests
    {
        [Test]
        public void Message()
        {
            var p = Samples.Parse(OscWriter.Message("/a/b", 7, 1.5f, "hey", true, false));
            Assert.AreEqual("/a/b i:7 f:1.5000 s:hey T F", p.Messages[0].ToString());
        }

        [Test]
        public void NestedBundle()
        {
            var p = Samples.Parse(OscWriter.Bundle(OscWriter.Message("/x", 1), OscWriter.Bundle(OscWriter.Message("/y", 2f))));
            Assert.IsTrue(p.IsBundle && p.Messages.Count == 2 && p.Messages[1].Address == "/y");
        }

        [Test]
        public void UnknownTagStopsDecoding()
        {
            // Unknown type tag 'Q' after an int: the int is kept, decoding stops, nothing throws.
            var raw = new byte[] { (byte)'/', (byte)'u', 0, 0, (byte)',', (byte)'i', (byte)'Q', (byte)'f', 0, 0, 0, 0, 0, 0, 0, 5, 9, 9, 9, 9 };
            var p = Samples.Parse(raw);
            Assert.IsTrue(p.Messages[0].Args.Count == 1 && p.Messages[0].Args[0].Int == 5 && p.Messages[0].HasUnknownTypes, p.Messages[0].ToString());
        }

        [Test]
        public void BlobInt64Double()
        {
            // A blob, int64, double: skipped correctly so a following float still reads.
            var mixed = new List<byte>();
            mixed.AddRange(new byte[] { (byte)'/', (byte)'m', 0, 0, (byte)',', (byte)'b', (byte)'h', (byte)'d', (byte)'f', 0, 0, 0 });
            mixed.AddRange(new byte[] { 0, 0, 0, 3, 1, 2, 3, 0 });
            mixed.AddRange(new byte[] { 0, 0, 0, 0, 0, 0, 0, 9 });
            mixed.AddRange(BitConverter.IsLittleEndian ? Samples.Rev(BitConverter.GetBytes(2.5)) : BitConverter.GetBytes(2.5));
            mixed.AddRange(new byte[] { 0x3f, 0x40, 0, 0 }); // 0.75f big-endian
            var m = Samples.Parse(mixed.ToArray()).Messages[0];
            Assert.IsTrue(m.Args.Count == 4 && m.Args[1].Long == 9 && m.Args[2].Double == 2.5 && m.Args[3].Float == 0.75f, m.ToString());
        }

        [Test]
        public void TruncationsRejected()
        {
            // Every truncation of a valid bundle is rejected (or, at a message boundary, decodes a prefix) without throwing.
            var full = Samples.GenericBundle();
            OscPacket p; string err;
            for (int n = 0; n < full.Length; n++)
                Assert.IsFalse(OscPacket.TryParse(full, n, out p, out err) && n % 4 != 0, "length " + n);
        }

        [Test]
        public void DeepNestingRefused()
        {
            var deep = OscWriter.Message("/d", 1);
            for (int k = 0; k < 20; k++) deep = OscWriter.Bundle(deep);
            OscPacket p; string err;
            Assert.IsFalse(OscPacket.TryParse(deep, out p, out err));
            Assert.IsTrue(err.Contains("deep"), err);
        }

        [Test]
        public void BadElementSizeAndNotOsc()
        {
            var bad = (byte[])Samples.GenericBundle().Clone();
            bad[16] = 0x7f;
            OscPacket p; string err;
            Assert.IsFalse(OscPacket.TryParse(bad, out p, out err));
            Assert.IsFalse(OscPacket.TryParse(new byte[] { 1, 2, 3, 4 }, out p, out err));
            Assert.IsFalse(OscPacket.TryParse(new byte[0], out p, out err));
        }

        [Test]
        public void FuzzNeverThrows()
        {
            var rng = new Random(1234);
            var seeds = new[] { Samples.GenericBundle(), OscWriter.Message("/VMC/Ext/Blend/Val", "Joy", 0.5f) };
            var reused = new OscPacket();
            var cache = new Utf8StringCache();
            for (int k = 0; k < 20000; k++)
            {
                byte[] d;
                if (k % 2 == 0)
                {
                    d = new byte[rng.Next(0, 64)];
                    rng.NextBytes(d);
                    if (d.Length >= 8 && k % 4 == 0) Array.Copy(Encoding.ASCII.GetBytes("#bundle\0"), d, 8);
                }
                else
                {
                    d = (byte[])seeds[k % seeds.Length].Clone();
                    int flips = rng.Next(1, 4);
                    for (int f = 0; f < flips; f++) d[rng.Next(d.Length)] = (byte)rng.Next(256);
                }
                OscPacket p; string e;
                OscPacket.TryParse(d, out p, out e);
                bool a = OscPacket.TryParseInto(d, d.Length, reused, cache, out e);
                Assert.AreEqual(p != null, a, "both parsers agree on packet " + k);
                if (a) Assert.AreEqual(p.Messages.Count, reused.Messages.Count);
            }
        }

        [Test]
        public void ParseIntoReusesPacketAndStrings()
        {
            var data = Samples.GenericBundle();
            var p = new OscPacket();
            var cache = new Utf8StringCache();
            string err;
            Assert.IsTrue(OscPacket.TryParseInto(data, data.Length, p, cache, out err), err);
            var first = p.Messages[0];
            string address = first.Address;
            Assert.IsTrue(OscPacket.TryParseInto(data, data.Length, p, cache, out err), err);
            Assert.AreEqual(6, p.Messages.Count);
            Assert.IsTrue(ReferenceEquals(address, p.Messages[0].Address) || ReferenceEquals(address, p.Messages[5].Address), "address strings come from the cache");
            Assert.AreEqual("/ser/vrm/happy f:0.8000", p.Messages[5].ToString());
            Assert.IsFalse(OscPacket.TryParseInto(new byte[] { 1, 2, 3, 4 }, 4, p, cache, out err));
            Assert.AreEqual(0, p.Messages.Count, "a failed parse leaves the packet empty");
        }

        [Test]
        public void StringCacheIsBounded()
        {
            var cache = new Utf8StringCache();
            for (int i = 0; i < Utf8StringCache.MaxEntries + 500; i++)
            {
                var b = Encoding.UTF8.GetBytes("/name/" + i);
                Assert.AreEqual("/name/" + i, cache.Get(b, 0, b.Length));
            }
            Assert.AreEqual(Utf8StringCache.MaxEntries, cache.Count);
            var again = Encoding.UTF8.GetBytes("/name/7");
            Assert.AreEqual("/name/7", cache.Get(again, 0, again.Length));
        }
    }
}
