// The receiving ends on 127.0.0.1: UDP junk, the byte-bounded queue, port conflicts, fast Dispose.
using System;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using NUnit.Framework;

namespace SerDaemon.Bridge.Tests
{
    [TestFixture]
    public class TransportTests
    {
        [Test]
        public void ReceiverSurvivesJunk()
        {
            using (var rx = new OscReceiver(0))
            using (var tx = new UdpClient())
            {
                var ep = new IPEndPoint(IPAddress.Loopback, rx.Port);
                var rng = new Random(7);
                for (int k = 0; k < 50; k++) { var junk = new byte[rng.Next(1, 200)]; rng.NextBytes(junk); tx.Send(junk, junk.Length, ep); }
                var good = Samples.GenericBundle();
                tx.Send(good, good.Length, ep);
                var p = new OscPacket();
                bool got = false;
                var sw = Stopwatch.StartNew();
                while (sw.ElapsedMilliseconds < 3000 && !(got = rx.TryDequeue(p))) Thread.Sleep(5);
                Assert.IsTrue(got && p.Messages.Count == 6, "received=" + rx.PacketsReceived);
                Assert.Greater(rx.PacketsMalformed, 44, "malformed counted on the receive thread");
            }
        }

        [Test]
        public void ReceiverDisposeIsFast()
        {
            var idle = new OscReceiver(0);
            Thread.Sleep(50); // the thread is blocked in Receive
            var t = Stopwatch.StartNew();
            idle.Dispose();
            // Closing the socket first wakes the receive at once (it was ~90-300 ms when the socket was
            // closed after waiting for the thread). Generous bound for loaded CI machines.
            Assert.Less(t.Elapsed.TotalMilliseconds, 250, "Dispose took " + t.Elapsed.TotalMilliseconds + " ms");
            Assert.IsFalse(idle.IsRunning);
            var thread = (Thread)typeof(OscReceiver).GetField("thread", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance).GetValue(idle);
            Assert.IsTrue(thread.Join(1000), "the receive thread ended (closing the socket woke it)");
        }

        [Test]
        public void PortInUseFailsLoudly()
        {
            using (var first = new OscReceiver(0))
            {
                var e = Assert.Throws<OscPortInUseException>(() => new OscReceiver(first.Port));
                Assert.AreEqual(first.Port, e.Port);
                Assert.IsTrue(e.Message.Contains("already in use"), e.Message);
            }
            using (var other = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0)))
            {
                int port = ((IPEndPoint)other.Client.LocalEndPoint).Port;
                Assert.Throws<OscPortInUseException>(() => new OscReceiver(port), "a port held by another socket");
            }
        }

        [Test]
        public void PortFreeAgainAfterDispose()
        {
            int port;
            using (var first = new OscReceiver(0)) port = first.Port;
            using (var again = new OscReceiver(port)) Assert.AreEqual(port, again.Port);
        }

        [Test]
        public void ByteQueueBoundedOldestFirst()
        {
            var q = new ByteQueue(110); // room for 3 messages of 30 bytes + 4-byte headers
            var msg = new byte[30];
            for (int i = 0; i < 10; i++) { msg[0] = (byte)i; q.Enqueue(msg, 0, msg.Length); }
            Assert.IsTrue(q.UsedBytes <= 110, "used " + q.UsedBytes);
            Assert.AreEqual(3, q.Count);
            Assert.AreEqual(7L, q.Dropped);
            byte[] buf = null;
            int len;
            Assert.IsTrue(q.TryDequeue(ref buf, out len));
            Assert.AreEqual(30, len);
            Assert.AreEqual(7, (int)buf[0], "the newest survive");
            Assert.IsFalse(q.Enqueue(new byte[200], 0, 200), "larger than the ring");
            // Wrap-around keeps bytes intact.
            var q2 = new ByteQueue(64);
            var rng = new Random(1);
            for (int k = 0; k < 1000; k++)
            {
                var m = new byte[rng.Next(1, 20)];
                rng.NextBytes(m);
                q2.Enqueue(m, 0, m.Length);
                byte[] o = null;
                int n;
                while (q2.Count > 1) q2.TryDequeue(ref o, out n);
                Assert.IsTrue(q2.TryDequeue(ref o, out n) && n == m.Length);
                for (int i = 0; i < n; i++) Assert.AreEqual(m[i], o[i]);
            }
        }

        [Test]
        public void ReceiverQueueBoundedByBytes()
        {
            using (var rx = new OscReceiver(0, "127.0.0.1", 8192))
            using (var tx = new UdpClient())
            {
                var ep = new IPEndPoint(IPAddress.Loopback, rx.Port);
                var good = Samples.GenericBundle();
                for (int k = 0; k < 400; k++) tx.Send(good, good.Length, ep);
                var sw = Stopwatch.StartNew();
                while (sw.ElapsedMilliseconds < 3000 && rx.PacketsReceived < 400) Thread.Sleep(5);
                Assert.IsTrue(rx.QueuedBytes <= 8192, "queued " + rx.QueuedBytes);
                Assert.Greater(rx.PacketsDropped, 0);
            }
        }

        [Test]
        public void WebSocketDisposeIsFast()
        {
            // A server that accepts TCP and never answers the WebSocket handshake: the client hangs in
            // ConnectAsync, where 0.1.0's Dispose waited its full second for the task.
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            try
            {
                var c = new WebSocketStateClient("ws://127.0.0.1:" + ((IPEndPoint)listener.LocalEndpoint).Port + "/");
                c.Start();
                Thread.Sleep(200);
                var t = Stopwatch.StartNew();
                c.Dispose();
                Assert.Less(t.Elapsed.TotalMilliseconds, 250, "Dispose took " + t.Elapsed.TotalMilliseconds + " ms");
            }
            finally { listener.Stop(); }
        }
    }
}
