// A byte-bounded FIFO of whole messages between a receive thread and the main thread (plain C#).
using System;

namespace SerDaemon.Bridge
{
    /// <summary>
    /// Whole messages (datagrams, WebSocket texts) in one preallocated ring of CapacityBytes bytes.
    /// Enqueue copies the bytes in and, when the ring is full, drops the oldest messages first (the
    /// newest emotion matters most); a message larger than the ring is dropped. Dequeue copies one
    /// message out into the caller's buffer. Neither allocates once the caller's buffer has grown to
    /// the largest message. Thread-safe (one short lock per call).
    /// </summary>
    public sealed class ByteQueue
    {
        readonly byte[] ring;
        readonly object gate = new object();
        int head, tail, used, count; // head: oldest byte; tail: next free byte; used: bytes incl. 4-byte headers
        long dropped;

        public ByteQueue(int capacityBytes)
        {
            if (capacityBytes < 64) capacityBytes = 64;
            ring = new byte[capacityBytes];
        }

        public int CapacityBytes { get { return ring.Length; } }
        public int Count { get { lock (gate) return count; } }
        public int UsedBytes { get { lock (gate) return used; } }
        /// <summary>Messages dropped so far (oldest pushed out, or too large for the ring).</summary>
        public long Dropped { get { lock (gate) return dropped; } }

        /// <summary>Append a copy of data[offset..offset+length); false when it alone is larger than the ring.</summary>
        public bool Enqueue(byte[] data, int offset, int length)
        {
            int need = length + 4;
            lock (gate)
            {
                if (need > ring.Length) { dropped++; return false; }
                while (ring.Length - used < need) DropOldest();
                WriteInt(tail, length);
                tail = (tail + 4) % ring.Length;
                int first = Math.Min(length, ring.Length - tail);
                Buffer.BlockCopy(data, offset, ring, tail, first);
                if (first < length) Buffer.BlockCopy(data, offset + first, ring, 0, length - first);
                tail = (tail + length) % ring.Length;
                used += need;
                count++;
                return true;
            }
        }

        /// <summary>Copy the oldest message into buffer (grown when too small) and remove it.</summary>
        public bool TryDequeue(ref byte[] buffer, out int length)
        {
            lock (gate)
            {
                length = 0;
                if (count == 0) return false;
                length = ReadInt(head);
                int start = (head + 4) % ring.Length;
                if (buffer == null || buffer.Length < length) buffer = new byte[Math.Max(length, 1024)];
                int first = Math.Min(length, ring.Length - start);
                Buffer.BlockCopy(ring, start, buffer, 0, first);
                if (first < length) Buffer.BlockCopy(ring, 0, buffer, first, length - first);
                Remove(length);
                return true;
            }
        }

        public void Clear()
        {
            lock (gate) { head = tail = used = count = 0; }
        }

        void DropOldest()
        {
            Remove(ReadInt(head));
            dropped++;
        }

        void Remove(int length)
        {
            head = (head + 4 + length) % ring.Length;
            used -= 4 + length;
            count--;
            if (count == 0) head = tail = used = 0;
        }

        // The 4-byte length header may wrap around the end of the ring too.
        void WriteInt(int at, int v)
        {
            for (int i = 0; i < 4; i++) ring[(at + i) % ring.Length] = (byte)(v >> (8 * i));
        }

        int ReadInt(int at)
        {
            int v = 0;
            for (int i = 0; i < 4; i++) v |= ring[(at + i) % ring.Length] << (8 * i);
            return v;
        }
    }
}
