// OSC 1.0 decoding (plain C#, no UnityEngine): messages, bundles (recursive), padding, big-endian.
// Malformed or truncated input never throws: TryParse returns false and says why.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace SerDaemon.Bridge
{
    /// <summary>One decoded OSC argument. Kind is its type tag ('i', 'f', 's', 'T', 'F', ...).</summary>
    public struct OscArg
    {
        public char Kind;
        public int Int;
        public float Float;
        public long Long;
        public double Double;
        public string String;
        /// <summary>
        /// A blob ('b'): a window on the datagram's own buffer, no copy per packet. It is valid until that
        /// buffer is reused (the receiver's, by the next TryDequeue); copy it (Blob) to keep it.
        /// </summary>
        public ArraySegment<byte> BlobBytes;

        /// <summary>A copy of the blob's bytes (allocates on each call), or null for no blob.</summary>
        public byte[] Blob
        {
            get
            {
                if (BlobBytes.Array == null) return null;
                var copy = new byte[BlobBytes.Count];
                Buffer.BlockCopy(BlobBytes.Array, BlobBytes.Offset, copy, 0, BlobBytes.Count);
                return copy;
            }
        }

        public bool IsNumber { get { return Kind == 'i' || Kind == 'f' || Kind == 'h' || Kind == 'd'; } }

        /// <summary>The argument as a float: numbers as they are, T/F as 1/0, anything else 0.</summary>
        public float AsFloat()
        {
            switch (Kind)
            {
                case 'f': return Float;
                case 'i': return Int;
                case 'h': return Long;
                case 'd': return (float)Double;
                case 'T': return 1f;
                default: return 0f;
            }
        }

        public int AsInt()
        {
            switch (Kind)
            {
                case 'i': return Int;
                case 'f': return (int)Float;
                case 'h': return (int)Long;
                case 'd': return (int)Double;
                case 'T': return 1;
                default: return 0;
            }
        }

        public override string ToString()
        {
            switch (Kind)
            {
                case 'i': return "i:" + Int.ToString(CultureInfo.InvariantCulture);
                case 'f': return "f:" + Float.ToString("F4", CultureInfo.InvariantCulture);
                case 'h': return "h:" + Long.ToString(CultureInfo.InvariantCulture);
                case 'd': return "d:" + Double.ToString("F4", CultureInfo.InvariantCulture);
                case 's': case 'S': return Kind + ":" + String;
                case 'b': return "b:" + BlobBytes.Count + "bytes";
                case 'T': return "T";
                case 'F': return "F";
                case 'N': return "N";
                case 'I': return "I";
                default: return Kind + ":?";
            }
        }
    }

    /// <summary>One OSC message: an address and its arguments.</summary>
    public sealed class OscMessage
    {
        public string Address;
        public readonly List<OscArg> Args = new List<OscArg>();
        /// <summary>True when a type tag this parser does not know stopped argument decoding early.</summary>
        public bool HasUnknownTypes;

        public override string ToString()
        {
            var sb = new StringBuilder(Address);
            for (int i = 0; i < Args.Count; i++) sb.Append(' ').Append(Args[i].ToString());
            if (HasUnknownTypes) sb.Append(" ?");
            return sb.ToString();
        }
    }

    /// <summary>A datagram's messages in order (a bundle's contents flattened).</summary>
    public sealed class OscPacket
    {
        public const int MaxBundleDepth = 8;
        public const int MaxMessages = 4096;

        public readonly List<OscMessage> Messages = new List<OscMessage>();
        public bool IsBundle;

        // Message objects kept for reuse by TryParseInto (their Args lists keep their capacity).
        readonly List<OscMessage> spare = new List<OscMessage>();

        /// <summary>Empty this packet, keeping its message objects for the next TryParseInto.</summary>
        public void Clear()
        {
            for (int i = 0; i < Messages.Count; i++) spare.Add(Messages[i]);
            Messages.Clear();
            IsBundle = false;
        }

        OscMessage NewMessage()
        {
            if (spare.Count == 0) return new OscMessage();
            var m = spare[spare.Count - 1];
            spare.RemoveAt(spare.Count - 1);
            m.Args.Clear();
            m.HasUnknownTypes = false;
            m.Address = null;
            return m;
        }

        /// <summary>
        /// Decode one datagram into an existing packet without allocating in the steady state: message
        /// objects are reused and strings come from <paramref name="strings"/> (each distinct address or
        /// name is made once). The packet's contents are valid until its next use. Same rules as TryParse.
        /// </summary>
        public static bool TryParseInto(byte[] data, int length, OscPacket into, Utf8StringCache strings, out string error)
        {
            error = null;
            if (into == null) { error = "no packet"; return false; }
            into.Clear();
            try
            {
                if (data == null) { error = "no data"; return false; }
                if (length < 0 || length > data.Length) { error = "bad length"; return false; }
                if (ParseElement(data, 0, length, 0, into, strings, out error)) return true;
            }
            catch (Exception e)
            {
                error = "parser exception: " + e.GetType().Name;
            }
            into.Clear();
            return false;
        }

        /// <summary>
        /// Decode one datagram. Returns false (and no messages) for anything malformed:
        /// bad padding, sizes past the end, missing terminators, nesting deeper than MaxBundleDepth.
        /// Unknown argument type tags are not an error: decoding stops at them for that message.
        /// </summary>
        public static bool TryParse(byte[] data, int length, out OscPacket packet, out string error)
        {
            packet = null;
            error = null;
            try
            {
                if (data == null) { error = "no data"; return false; }
                if (length < 0 || length > data.Length) { error = "bad length"; return false; }
                var p = new OscPacket();
                if (!ParseElement(data, 0, length, 0, p, null, out error)) return false;
                packet = p;
                return true;
            }
            catch (Exception e)
            {
                // Defensive: the parser checks every bound, but a receive loop must never die.
                error = "parser exception: " + e.GetType().Name;
                packet = null;
                return false;
            }
        }

        public static bool TryParse(byte[] data, out OscPacket packet, out string error)
        {
            return TryParse(data, data == null ? 0 : data.Length, out packet, out error);
        }

        static readonly byte[] BundleTag = Encoding.ASCII.GetBytes("#bundle\0");

        static bool IsBundleAt(byte[] d, int start, int end)
        {
            if (end - start < 8) return false;
            for (int i = 0; i < 8; i++) if (d[start + i] != BundleTag[i]) return false;
            return true;
        }

        static bool ParseElement(byte[] d, int start, int end, int depth, OscPacket into, Utf8StringCache strings, out string error)
        {
            error = null;
            if (end - start <= 0) { error = "empty element"; return false; }
            if ((end - start) % 4 != 0) { error = "size not a multiple of 4"; return false; }
            if (d[start] == (byte)'#')
            {
                if (!IsBundleAt(d, start, end)) { error = "bad bundle tag"; return false; }
                if (depth >= MaxBundleDepth) { error = "bundles nested too deep"; return false; }
                into.IsBundle = true;
                int pos = start + 8;
                if (end - pos < 8) { error = "truncated bundle time tag"; return false; }
                pos += 8; // time tag: ignored (applied immediately)
                while (pos < end)
                {
                    if (end - pos < 4) { error = "truncated bundle element size"; return false; }
                    int size = ReadInt32(d, pos);
                    pos += 4;
                    if (size <= 0 || size > end - pos) { error = "bundle element size out of range"; return false; }
                    if (!ParseElement(d, pos, pos + size, depth + 1, into, strings, out error)) return false;
                    pos += size;
                }
                return true;
            }
            if (d[start] != (byte)'/') { error = "not a message or bundle"; return false; }
            if (into.Messages.Count >= MaxMessages) { error = "too many messages"; return false; }
            var msg = into.NewMessage();
            if (!ParseMessage(d, start, end, msg, strings, out error)) { into.spare.Add(msg); return false; }
            into.Messages.Add(msg);
            return true;
        }

        static bool ParseMessage(byte[] d, int start, int end, OscMessage m, Utf8StringCache strings, out string error)
        {
            int pos = start;
            string address;
            if (!ReadString(d, ref pos, end, strings, out address)) { error = "bad address string"; return false; }
            m.Address = address;
            if (pos >= end)
            {
                // Very old senders omit the type tag string: a message without arguments.
                error = null;
                return true;
            }
            // The type tags are read in place (no string): ',' then one byte per argument, then NULs.
            if (d[pos] != (byte)',') { error = "bad type tag string"; return false; }
            int tagStart = pos, tagEnd = pos;
            while (tagEnd < end && d[tagEnd] != 0) tagEnd++;
            if (tagEnd >= end) { error = "bad type tag string"; return false; }
            pos = tagStart + (((tagEnd - tagStart) / 4) + 1) * 4;
            if (pos > end) { error = "bad type tag string"; return false; }
            for (int t = tagStart + 1; t < tagEnd; t++)
            {
                char k = (char)d[t];
                var a = new OscArg { Kind = k };
                switch (k)
                {
                    case 'i':
                        if (end - pos < 4) { error = "truncated int"; return false; }
                        a.Int = ReadInt32(d, pos); pos += 4; break;
                    case 'f':
                        if (end - pos < 4) { error = "truncated float"; return false; }
                        a.Float = ReadFloat(d, pos); pos += 4; break;
                    case 'h':
                        if (end - pos < 8) { error = "truncated int64"; return false; }
                        a.Long = ReadInt64(d, pos); pos += 8; break;
                    case 'd':
                        if (end - pos < 8) { error = "truncated double"; return false; }
                        a.Double = BitConverter.Int64BitsToDouble(ReadInt64(d, pos)); pos += 8; break;
                    case 't':
                        if (end - pos < 8) { error = "truncated time tag"; return false; }
                        a.Long = ReadInt64(d, pos); pos += 8; break;
                    case 'c': case 'r': case 'm':
                        if (end - pos < 4) { error = "truncated 32-bit argument"; return false; }
                        a.Int = ReadInt32(d, pos); pos += 4; break;
                    case 's': case 'S':
                        string s;
                        if (!ReadString(d, ref pos, end, strings, out s)) { error = "bad string argument"; return false; }
                        a.String = s; break;
                    case 'b':
                        if (end - pos < 4) { error = "truncated blob size"; return false; }
                        int n = ReadInt32(d, pos); pos += 4;
                        if (n < 0 || n > end - pos) { error = "blob size out of range"; return false; }
                        int padded = (n + 3) & ~3;
                        if (padded > end - pos) { error = "blob padding past the end"; return false; }
                        a.BlobBytes = new ArraySegment<byte>(d, pos, n); // no copy: the packet is valid until its buffer is reused
                        pos += padded; break;
                    case 'T': case 'F': case 'N': case 'I':
                        break; // no data
                    case '[': case ']':
                        continue; // array markers carry no data; their contents are listed flat
                    default:
                        // Unknown type: its size is unknown, so stop here and keep what was read.
                        m.HasUnknownTypes = true;
                        error = null;
                        return true;
                }
                m.Args.Add(a);
            }
            error = null;
            return true;
        }

        /// <summary>An OSC string: ASCII/UTF-8 bytes, a NUL, then NULs up to a multiple of 4.</summary>
        static bool ReadString(byte[] d, ref int pos, int end, Utf8StringCache strings, out string s)
        {
            s = null;
            int i = pos;
            while (i < end && d[i] != 0) i++;
            if (i >= end) return false; // no terminator
            int next = pos + (((i - pos) / 4) + 1) * 4;
            if (next > end) return false;
            s = strings != null ? strings.Get(d, pos, i - pos) : Encoding.UTF8.GetString(d, pos, i - pos);
            pos = next;
            return true;
        }

        static int ReadInt32(byte[] d, int p)
        {
            return (d[p] << 24) | (d[p + 1] << 16) | (d[p + 2] << 8) | d[p + 3];
        }

        static long ReadInt64(byte[] d, int p)
        {
            return ((long)(uint)ReadInt32(d, p) << 32) | (uint)ReadInt32(d, p + 4);
        }

        static float ReadFloat(byte[] d, int p)
        {
            // Reinterpret the big-endian bits without a temporary array (this ran once per float).
            return new IntFloat { Int = ReadInt32(d, p) }.Float;
        }

        [StructLayout(LayoutKind.Explicit)]
        struct IntFloat
        {
            [FieldOffset(0)] public int Int;
            [FieldOffset(0)] public float Float;
        }
    }

    /// <summary>Builds OSC datagrams (used by tests and tools; the bridge itself only receives).</summary>
    public static class OscWriter
    {
        public static byte[] Message(string address, params object[] args)
        {
            var buf = new List<byte>();
            WriteString(buf, address);
            var tags = new StringBuilder(",");
            var data = new List<byte>();
            foreach (var a in args)
            {
                if (a is int) { tags.Append('i'); WriteInt32(data, (int)a); }
                else if (a is float) { tags.Append('f'); WriteFloat(data, (float)a); }
                else if (a is string) { tags.Append('s'); WriteString(data, (string)a); }
                else if (a is bool) { tags.Append((bool)a ? 'T' : 'F'); }
                else if (a is byte[])
                {
                    var b = (byte[])a;
                    tags.Append('b');
                    WriteInt32(data, b.Length);
                    data.AddRange(b);
                    while (data.Count % 4 != 0) data.Add(0);
                }
                else throw new ArgumentException("unsupported OSC argument type");
            }
            WriteString(buf, tags.ToString());
            buf.AddRange(data);
            return buf.ToArray();
        }

        public static byte[] Bundle(params byte[][] elements)
        {
            var buf = new List<byte>(Encoding.ASCII.GetBytes("#bundle\0"));
            WriteInt32(buf, 0); WriteInt32(buf, 1); // time tag "immediately"
            foreach (var e in elements) { WriteInt32(buf, e.Length); buf.AddRange(e); }
            return buf.ToArray();
        }

        static void WriteString(List<byte> buf, string s)
        {
            var b = Encoding.UTF8.GetBytes(s);
            buf.AddRange(b);
            int pad = 4 - (b.Length % 4);
            for (int i = 0; i < pad; i++) buf.Add(0);
        }

        static void WriteInt32(List<byte> buf, int v)
        {
            buf.Add((byte)(v >> 24)); buf.Add((byte)(v >> 16)); buf.Add((byte)(v >> 8)); buf.Add((byte)v);
        }

        static void WriteFloat(List<byte> buf, float f)
        {
            var b = BitConverter.GetBytes(f);
            if (BitConverter.IsLittleEndian) Array.Reverse(b);
            buf.AddRange(b);
        }
    }
}
