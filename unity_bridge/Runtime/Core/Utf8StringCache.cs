// Turns UTF-8 byte runs into strings once: the same OSC address or JSON name arriving 90 times a second
// then costs a hash and a compare instead of a new string each time (plain C#).
using System;
using System.Text;

namespace SerDaemon.Bridge
{
    /// <summary>
    /// A bounded table from UTF-8 bytes to the string they decode to. Get returns the cached string
    /// for bytes seen before and allocates only for new ones; once MaxEntries distinct strings are
    /// kept (a sender inventing names), further new strings are decoded without being cached, so
    /// memory stays bounded. Not thread-safe: give each thread its own.
    /// </summary>
    public sealed class Utf8StringCache
    {
        /// <summary>Most distinct strings kept.</summary>
        public const int MaxEntries = 2048;
        /// <summary>Longer byte runs are decoded without caching.</summary>
        public const int MaxBytes = 128;

        const int Slots = MaxEntries * 2; // open addressing, at most half full
        readonly int[] hashes = new int[Slots];
        readonly byte[][] keys = new byte[Slots][];
        readonly string[] values = new string[Slots];
        int count;

        public int Count { get { return count; } }

        public string Get(byte[] data, int offset, int length)
        {
            return Lookup(data, offset, length, null);
        }

        /// <summary>
        /// The string cached for these bytes, else <paramref name="decoded"/> (or the bytes decoded as UTF-8
        /// when it is null), cached for next time. For byte runs that are not plain UTF-8 of their string,
        /// e.g. a JSON string with \u escapes: the raw bytes are the key, the unescaped text the value.
        /// </summary>
        public string Lookup(byte[] data, int offset, int length, string decoded)
        {
            if (length == 0) return decoded ?? "";
            if (length > MaxBytes) return decoded ?? Encoding.UTF8.GetString(data, offset, length);
            int h = Hash(data, offset, length);
            int slot = (h & 0x7fffffff) % Slots;
            for (int probe = 0; probe < Slots; probe++)
            {
                var k = keys[slot];
                if (k == null)
                {
                    string s = decoded ?? Encoding.UTF8.GetString(data, offset, length);
                    if (count >= MaxEntries) return s;
                    var copy = new byte[length];
                    Buffer.BlockCopy(data, offset, copy, 0, length);
                    keys[slot] = copy; hashes[slot] = h; values[slot] = s;
                    count++;
                    return s;
                }
                if (hashes[slot] == h && Same(k, data, offset, length)) return values[slot];
                slot = slot + 1 == Slots ? 0 : slot + 1;
            }
            return decoded ?? Encoding.UTF8.GetString(data, offset, length);
        }

        /// <summary>The string cached for exactly these bytes, without adding anything.</summary>
        public bool TryGet(byte[] data, int offset, int length, out string value)
        {
            value = null;
            if (length == 0 || length > MaxBytes) return false;
            int h = Hash(data, offset, length);
            int slot = (h & 0x7fffffff) % Slots;
            for (int probe = 0; probe < Slots; probe++)
            {
                var k = keys[slot];
                if (k == null) return false;
                if (hashes[slot] == h && Same(k, data, offset, length)) { value = values[slot]; return true; }
                slot = slot + 1 == Slots ? 0 : slot + 1;
            }
            return false;
        }

        static int Hash(byte[] d, int off, int len)
        {
            unchecked
            {
                int h = (int)2166136261;
                for (int i = 0; i < len; i++) h = (h ^ d[off + i]) * 16777619;
                return h;
            }
        }

        static bool Same(byte[] k, byte[] d, int off, int len)
        {
            if (k.Length != len) return false;
            for (int i = 0; i < len; i++) if (k[i] != d[off + i]) return false;
            return true;
        }
    }
}
