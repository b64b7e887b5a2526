// OSC over UDP on a background thread, handed to the main thread through a byte-bounded queue (plain C#).
using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Threading;

namespace SerDaemon.Bridge
{
    /// <summary>
    /// Listens for OSC datagrams on a UDP port. A background thread receives into one reused buffer,
    /// checks each datagram parses (malformed ones are counted and skipped, never thrown) and copies the
    /// good ones into a byte-bounded queue; the main thread decodes them with TryDequeue(OscPacket) into
    /// a reused packet, so the steady state allocates nothing. A bundle is never split.
    ///
    /// The port is bound exclusively: a port already in use (VRChat, VSeeFace, a second receiver) throws
    /// OscPortInUseException instead of silently sharing the traffic. Dispose closes the socket first,
    /// which wakes the blocked receive at once, so it returns in about a millisecond.
    /// </summary>
    public sealed class OscReceiver : IDisposable
    {
        /// <summary>Fallback wake-up of the receive thread (closing the socket normally wakes it at once).</summary>
        public const int ReceiveTimeoutMs = 500;
        /// <summary>Default bound of the queue between the threads: about 100 of the daemon's largest bundles.</summary>
        public const int DefaultMaxQueuedBytes = 256 * 1024;

        readonly Socket socket;
        readonly Thread thread;
        readonly ByteQueue queue;
        readonly byte[] receiveBuffer = new byte[65536];
        readonly OscPacket checkPacket = new OscPacket();          // receive thread only
        readonly Utf8StringCache checkStrings = new Utf8StringCache(); // receive thread only
        readonly Utf8StringCache strings = new Utf8StringCache();      // the dequeuing thread
        byte[] dequeueBuffer = new byte[4096];
        volatile bool stopping;
        long packets, malformed;
        volatile string lastError;

        public int Port { get; private set; }
        public long PacketsReceived { get { return Interlocked.Read(ref packets); } }
        public long PacketsMalformed { get { return Interlocked.Read(ref malformed); } }
        /// <summary>Packets pushed out of the full queue (oldest first) or too large for it.</summary>
        public long PacketsDropped { get { return queue.Dropped; } }
        /// <summary>Bytes waiting for the main thread.</summary>
        public int QueuedBytes { get { return queue.UsedBytes; } }
        /// <summary>Why the last malformed packet or socket error happened (null if none).</summary>
        public string LastError { get { return lastError; } }
        public bool IsRunning { get { return thread.IsAlive && !stopping; } }

        /// <param name="port">UDP port (0 picks a free one; see Port).</param>
        /// <param name="bindAddress">"127.0.0.1" (default: this machine only) or "0.0.0.0" for every interface.</param>
        /// <param name="maxQueuedBytes">bound of the queue between the threads; the oldest packets go first.</param>
        /// <exception cref="OscPortInUseException">another socket already listens on the port.</exception>
        public OscReceiver(int port, string bindAddress = "127.0.0.1", int maxQueuedBytes = DefaultMaxQueuedBytes)
        {
            IPAddress ip;
            if (string.IsNullOrEmpty(bindAddress) || !IPAddress.TryParse(bindAddress, out ip)) ip = IPAddress.Loopback;
            queue = new ByteQueue(maxQueuedBytes);
            socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                // Never share the port: without SO_REUSEADDR a second bind fails (Linux, macOS, Mono), and
                // ExclusiveAddressUse stops a later SO_REUSEADDR socket from taking it over (Windows).
                try { socket.ExclusiveAddressUse = true; } catch (SocketException) { } catch (NotSupportedException) { }
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, false);
                socket.Bind(new IPEndPoint(ip, port));
            }
            catch (SocketException e)
            {
                socket.Close();
                if (e.SocketErrorCode == SocketError.AddressAlreadyInUse || e.SocketErrorCode == SocketError.AccessDenied)
                    throw new OscPortInUseException(port, e);
                throw;
            }
            socket.ReceiveTimeout = ReceiveTimeoutMs;
            try { socket.ReceiveBufferSize = 1 << 20; } catch (SocketException) { }
            Port = ((IPEndPoint)socket.LocalEndPoint).Port;
            thread = new Thread(Run) { IsBackground = true, Name = "SerDaemon OSC receiver" };
            thread.Start();
        }

        void Run()
        {
            while (!stopping)
            {
                int n;
                SocketError code;
                try
                {
                    // The overload with an out SocketError reports timeouts without throwing (no garbage when idle).
                    n = socket.Receive(receiveBuffer, 0, receiveBuffer.Length, SocketFlags.None, out code);
                }
                catch (ObjectDisposedException) { break; }
                catch (Exception e)
                {
                    if (stopping) break;
                    lastError = "receive: " + e.GetType().Name;
                    Thread.Sleep(10);
                    continue;
                }
                if (stopping) break;
                if (code != SocketError.Success)
                {
                    if (code == SocketError.TimedOut || code == SocketError.WouldBlock) continue;
                    if (code == SocketError.Interrupted || code == SocketError.OperationAborted || code == SocketError.Shutdown) break;
                    // e.g. ICMP port unreachable reported on Windows (ConnectionReset): keep listening.
                    lastError = "socket: " + code;
                    Thread.Sleep(10);
                    continue;
                }
                Accept(receiveBuffer, n);
            }
        }

        /// <summary>One received datagram: counted, checked, queued for the main thread.</summary>
        void Accept(byte[] data, int length)
        {
            Interlocked.Increment(ref packets);
            string error;
            if (!OscPacket.TryParseInto(data, length, checkPacket, checkStrings, out error))
            {
                Interlocked.Increment(ref malformed);
                lastError = error;
                return;
            }
            if (checkPacket.Messages.Count == 0) return;
            queue.Enqueue(data, 0, length);
        }

        /// <summary>
        /// Decode the oldest waiting packet into <paramref name="into"/> (reused: its contents are valid until
        /// its next use). Allocation-free in the steady state. Call from one thread (normally the main thread).
        /// </summary>
        public bool TryDequeue(OscPacket into)
        {
            int length;
            string error;
            while (queue.TryDequeue(ref dequeueBuffer, out length))
                if (OscPacket.TryParseInto(dequeueBuffer, length, into, strings, out error)) return true;
            return false;
        }

        /// <summary>Take the oldest decoded packet as a new object (allocates; TryDequeue(OscPacket) does not).</summary>
        public bool TryDequeue(out OscPacket packet)
        {
            packet = new OscPacket();
            if (TryDequeue(packet)) return true;
            packet = null;
            return false;
        }

        /// <summary>Move every waiting packet into <paramref name="into"/> as new objects, at most max of them; returns how many.</summary>
        public int Drain(List<OscPacket> into, int max = int.MaxValue)
        {
            int n = 0;
            OscPacket p;
            while (n < max && TryDequeue(out p)) { into.Add(p); n++; }
            return n;
        }

        /// <summary>
        /// Stop listening. Closes the socket first (that wakes the blocked receive at once), then waits at
        /// most joinTimeoutMs for the thread; it never touches shared state after the close, so not waiting
        /// longer is safe.
        /// </summary>
        public void Dispose()
        {
            Dispose(50);
        }

        public void Dispose(int joinTimeoutMs)
        {
            if (stopping) return;
            stopping = true;
            try { socket.Close(); } catch (Exception) { }
            if (Thread.CurrentThread != thread) thread.Join(Math.Max(0, joinTimeoutMs));
        }
    }

    /// <summary>The UDP port is already taken by another program or receiver.</summary>
    public sealed class OscPortInUseException : Exception
    {
        public readonly int Port;

        public OscPortInUseException(int port, Exception inner)
            : base("UDP port " + port + " is already in use by another program (VRChat, VSeeFace, another receiver?). " +
                   "Only one program can listen on a UDP port: pick another port here and give it to ser-daemon --osc.", inner)
        {
            Port = port;
        }
    }
}
