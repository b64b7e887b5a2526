// What a bad or busy sender can make the decoder keep: address and name lengths, stream slots.
using System;
using NUnit.Framework;

namespace SerDaemon.Bridge.Tests
{
    [TestFixture]
    public class BoundsTests
    {
        [Test]
        public void LongAddressesAndNamesAreNotRetained()
        {
            // Before the caps, 1024 datagrams with 60 KB addresses kept 235 MB alive (route cache keys + names).
            var d = new OscStateDecoder();
            var strings = new Utf8StringCache();
            var packet = new OscPacket();
            var big = new string('x', 60000);
            long before = GC.GetTotalMemory(true);
            for (int k = 0; k < 1024; k++)
            {
                string tail = big + k;
                var msg = (k % 3) == 0 ? OscWriter.Message("/ser/vrm/" + tail, 0.5f)
                        : (k % 3) == 1 ? OscWriter.Message("/ser/" + tail + "/state", "happy", 0.5f)
                        : OscWriter.Message("/VMC/Ext/Blend/Val", tail, 0.5f);
                string error;
                Assert.IsTrue(OscPacket.TryParseInto(msg, msg.Length, packet, strings, out error), error);
                d.Apply(packet);
            }
            d.Apply(Samples.Parse(OscWriter.Message("/VMC/Ext/Blend/Apply")));
            d.Apply(Samples.Parse(OscWriter.Message("/ser/vrm/" + new string('n', EmotionState.MaxNameLength + 1), 0.5f)));
            long grown = GC.GetTotalMemory(true) - before;
            GC.KeepAlive(d);
            GC.KeepAlive(strings);
            Console.WriteLine("BOUNDS retained_after_1024_long_addresses_bytes=" + grown + " routes=" + d.RouteCount + " streams=" + d.Streams.Count);
            Assert.AreEqual(3, d.RouteCount, "the two VMC addresses and the 138-character one; no 60 KB address is cached");
            Assert.AreEqual(1, d.Streams.Count, "no stream for a 60 KB id (only the VMC one)");
            Assert.IsNull(d.Streams[0].Values("vmc"), "no 60 KB clip names kept");
            Assert.Less(grown, 4L << 20, "bounded: under 4 MB kept");
            // The caps do not touch what the daemon sends.
            d.Apply(Samples.Parse(Samples.GenericBundle("/ser/" + new string('s', 100))));
            Assert.IsNotNull(d.Streams.Select(new string('s', 100)).Values("vrm"));
        }

        [Test]
        public void StreamsEvictLeastRecentlyHeard()
        {
            // Before: after 16 other stream ids, "mic" was ignored until the receiver was re-enabled.
            var d = new OscStateDecoder();
            int changes = 0;
            for (int k = 0; k < 40; k++)
            {
                d.Apply(Samples.Parse(Samples.GenericBundle("/ser/mic")));
                d.Apply(Samples.Parse(Samples.GenericBundle("/ser/other" + k)));
            }
            var mic = d.Streams.Select("mic");
            Assert.IsNotNull(mic, "the stream heard all along stays");
            Assert.AreEqual(StreamStates.MaxStreams, d.Streams.Count);
            Assert.IsNull(d.Streams.Select("other0"), "the least recently heard went");
            Assert.IsNotNull(d.Streams.Select("other39"));
            Assert.AreEqual(40L + 1 - StreamStates.MaxStreams, d.Streams.Evicted);
            // A reused slot starts clean: no values of the stream it held before.
            var fresh = d.Streams.Get("newcomer");
            Assert.IsTrue(fresh.Seq == -1 && fresh.Values("vrm") == null && fresh.Label == "neutral", fresh.ToString());
            d.Apply(Samples.Parse(Samples.GenericBundle("/ser/mic")));
            changes += d.Streams.Select("mic") == mic ? 1 : 0;
            Assert.AreEqual(1, changes, "mic keeps its state object");
        }
    }
}

namespace SerDaemon.Bridge.Tests
{
    [TestFixture]
    public class AllocationGapTests
    {
        [Test]
        public void BlobArgumentsDoNotAllocate()
        {
            var blob = new byte[1000];
            for (int i = 0; i < blob.Length; i++) blob[i] = (byte)i;
            var data = OscWriter.Message("/ser/blob", blob, 0.5f);
            var packet = new OscPacket();
            var strings = new Utf8StringCache();
            string error;
            long allocated = 0;
            for (int k = 0; k < 1100; k++)
            {
                long a = GC.GetAllocatedBytesForCurrentThread();
                Assert.IsTrue(OscPacket.TryParseInto(data, data.Length, packet, strings, out error), error);
                long b = GC.GetAllocatedBytesForCurrentThread();
                if (k >= 100) allocated += b - a;
            }
            var arg = packet.Messages[0].Args[0];
            Assert.AreEqual('b', arg.Kind);
            Assert.AreEqual(1000, arg.BlobBytes.Count);
            Assert.AreEqual((byte)(999 % 256), arg.BlobBytes.Array[arg.BlobBytes.Offset + 999]);
            Assert.AreEqual((byte)7, arg.Blob[7], "the copying accessor still works");
            Console.WriteLine("GAPS blob_packet_bytes_per_parse=" + allocated / 1000);
            Assert.AreEqual(0L, allocated / 1000, "before: a new byte[] per blob, per packet");
        }

        [Test]
        public void EscapedStreamIdsDecodedOnce()
        {
            // The daemon's JSON escapes non-ASCII (json.dumps): stream "mikrofon-ü" arrives as "mikrofon-\u00fc".
            var d = new WsStateDecoder();
            var json = System.Text.Encoding.UTF8.GetBytes(
                "{\"type\":\"state\",\"stream\":\"mikrofon-\\u00fc\",\"seq\":1,\"label\":\"happy\",\"confidence\":0.7,\"voice\":true," +
                "\"probs\":{\"happy\":0.7,\"neutral\":0.3},\"weights\":{\"vrm\":{\"happy\":0.6}},\"final\":false}");
            long allocated = 0;
            for (int k = 0; k < 1100; k++)
            {
                long a = GC.GetAllocatedBytesForCurrentThread();
                Assert.IsTrue(d.Decode(json, json.Length), d.LastError);
                long b = GC.GetAllocatedBytesForCurrentThread();
                if (k >= 100) allocated += b - a;
            }
            Assert.AreEqual("mikrofon-\u00fc", d.LastState.Stream);
            Assert.AreEqual(1, d.Streams.Count);
            Console.WriteLine("GAPS escaped_stream_id_bytes_per_state=" + allocated / 1000);
            Assert.AreEqual(0L, allocated / 1000, "before: a new string per escaped id, per state (the review measured 128 B)");
        }
    }
}
