// OSC over UDP on a background thread, handed to the main thread through a queue (plain C#).
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Threading;

namespace SerDaemon.Bridge
{
    /// <summary>
    /// Listens for OSC datagrams on a UDP port. A background thread receives and decodes;
    /// the main thread takes whole packets with TryDequeue/Drain (a bundle is never split).
    /// Malformed datagrams are counted and skipped, never thrown. Dispose returns within
    /// about ReceiveTimeoutMs because the socket wakes the thread that often.
    /// </summary>
    public sealed class OscReceiver : IDisposable
    {
        public const int ReceiveTimeoutMs = 100;

        readonly UdpClient client;
        readonly Thread thread;
        readonly ConcurrentQueue<OscPacket> queue = new ConcurrentQueue<OscPacket>();
        volatile bool stopping;
        long packets, malformed, dropped;
        volatile string lastError;

        /// <summary>Most packets kept waiting for the main thread; older ones are dropped first.</summary>
        public int MaxQueuedPackets = 1024;

        public int Port { get; private set; }
        public long PacketsReceived { get { return Interlocked.Read(ref packets); } }
        public long PacketsMalformed { get { return Interlocked.Read(ref malformed); } }
        public long PacketsDropped { get { return Interlocked.Read(ref dropped); } }
        /// <summary>Why the last malformed packet or socket error happened (null if none).</summary>
        public string LastError { get { return lastError; } }
        public bool IsRunning { get { return thread.IsAlive && !stopping; } }

        /// <param name="port">UDP port (0 picks a free one; see Port).</param>
        /// <param name="bindAddress">"127.0.0.1" (default: this machine only) or "0.0.0.0" for every interface.</param>
        public OscReceiver(int port, string bindAddress = "127.0.0.1")
        {
            IPAddress ip;
            if (string.IsNullOrEmpty(bindAddress) || !IPAddress.TryParse(bindAddress, out ip)) ip = IPAddress.Loopback;
            client = new UdpClient(new IPEndPoint(ip, port));
            client.Client.ReceiveTimeout = ReceiveTimeoutMs;
            try { client.Client.ReceiveBufferSize = 1 << 20; } catch (SocketException) { }
            Port = ((IPEndPoint)client.Client.LocalEndPoint).Port;
            thread = new Thread(Run) { IsBackground = true, Name = "SerDaemon OSC receiver" };
            thread.Start();
        }

        void Run()
        {
            var remote = new IPEndPoint(IPAddress.Any, 0);
            while (!stopping)
            {
                byte[] data;
                try
                {
                    data = client.Receive(ref remote);
                }
                catch (SocketException e)
                {
                    if (e.SocketErrorCode == SocketError.TimedOut || e.SocketErrorCode == SocketError.WouldBlock) continue;
                    if (stopping) break;
                    // e.g. ICMP port unreachable reported on Windows (ConnectionReset): keep listening.
                    lastError = "socket: " + e.SocketErrorCode;
                    Thread.Sleep(10);
                    continue;
                }
                catch (ObjectDisposedException) { break; }
                catch (Exception e)
                {
                    if (stopping) break;
                    lastError = "receive: " + e.GetType().Name;
                    Thread.Sleep(10);
                    continue;
                }
                Interlocked.Increment(ref packets);
                OscPacket packet;
                string error;
                if (!OscPacket.TryParse(data, out packet, out error))
                {
                    Interlocked.Increment(ref malformed);
                    lastError = error;
                    continue;
                }
                if (packet.Messages.Count == 0) continue;
                queue.Enqueue(packet);
                OscPacket old;
                while (queue.Count > MaxQueuedPackets && queue.TryDequeue(out old)) Interlocked.Increment(ref dropped);
            }
        }

        /// <summary>Take the oldest decoded packet (any thread; normally the main thread).</summary>
        public bool TryDequeue(out OscPacket packet)
        {
            return queue.TryDequeue(out packet);
        }

        /// <summary>Move every waiting packet into <paramref name="into"/>, at most max of them; returns how many.</summary>
        public int Drain(List<OscPacket> into, int max = int.MaxValue)
        {
            int n = 0;
            OscPacket p;
            while (n < max && queue.TryDequeue(out p)) { into.Add(p); n++; }
            return n;
        }

        public void Dispose()
        {
            if (stopping) return;
            stopping = true;
            // The thread wakes every ReceiveTimeoutMs; closing the socket also unblocks it.
            if (!thread.Join(ReceiveTimeoutMs * 3))
            {
                try { client.Close(); } catch (Exception) { }
                thread.Join(ReceiveTimeoutMs * 3);
            }
            try { client.Close(); } catch (Exception) { }
        }
    }
}
