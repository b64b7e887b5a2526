// A small JSON reader (plain C#): objects become Dictionary<string, object>, arrays List<object>,
// numbers double, plus string, bool and null. No dependencies; bad input returns false, never throws.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace SerDaemon.Bridge
{
    public static class MiniJson
    {
        public const int MaxDepth = 64;

        public static bool TryParse(string text, out object value, out string error)
        {
            value = null;
            error = null;
            if (text == null) { error = "no text"; return false; }
            try
            {
                var r = new Reader(text);
                r.SkipWs();
                if (!r.ReadValue(0, out value)) { error = r.Error ?? "bad JSON"; value = null; return false; }
                r.SkipWs();
                if (r.Pos != text.Length) { error = "trailing characters at " + r.Pos; value = null; return false; }
                return true;
            }
            catch (Exception e)
            {
                error = "JSON parser exception: " + e.GetType().Name;
                value = null;
                return false;
            }
        }

        // Helpers for reading parsed objects without casts everywhere.
        public static Dictionary<string, object> Obj(object o, string key)
        {
            var d = o as Dictionary<string, object>;
            object v;
            return d != null && d.TryGetValue(key, out v) ? v as Dictionary<string, object> : null;
        }

        public static string Str(object o, string key, string fallback = null)
        {
            var d = o as Dictionary<string, object>;
            object v;
            return d != null && d.TryGetValue(key, out v) && v is string ? (string)v : fallback;
        }

        public static double Num(object o, string key, double fallback = 0)
        {
            var d = o as Dictionary<string, object>;
            object v;
            if (d == null || !d.TryGetValue(key, out v)) return fallback;
            if (v is double) return (double)v;
            if (v is bool) return (bool)v ? 1 : 0;
            return fallback;
        }

        public static bool Bool(object o, string key, bool fallback = false)
        {
            var d = o as Dictionary<string, object>;
            object v;
            if (d == null || !d.TryGetValue(key, out v)) return fallback;
            if (v is bool) return (bool)v;
            if (v is double) return (double)v != 0;
            return fallback;
        }

        sealed class Reader
        {
            readonly string s;
            public int Pos;
            public string Error;

            public Reader(string text) { s = text; }

            public void SkipWs()
            {
                while (Pos < s.Length && (s[Pos] == ' ' || s[Pos] == '\t' || s[Pos] == '\n' || s[Pos] == '\r')) Pos++;
            }

            bool Fail(string why) { if (Error == null) Error = why + " at " + Pos; return false; }

            public bool ReadValue(int depth, out object value)
            {
                value = null;
                if (depth > MaxDepth) return Fail("nested too deep");
                if (Pos >= s.Length) return Fail("unexpected end");
                char c = s[Pos];
                switch (c)
                {
                    case '{': return ReadObject(depth, out value);
                    case '[': return ReadArray(depth, out value);
                    case '"': { string str; bool ok = ReadString(out str); value = str; return ok; }
                    case 't': value = true; return Literal("true");
                    case 'f': value = false; return Literal("false");
                    case 'n': value = null; return Literal("null");
                    default:
                        if (c == '-' || (c >= '0' && c <= '9')) return ReadNumber(out value);
                        return Fail("unexpected character");
                }
            }

            bool Literal(string word)
            {
                if (string.CompareOrdinal(s, Pos, word, 0, word.Length) != 0) return Fail("bad literal");
                Pos += word.Length;
                return true;
            }

            bool ReadNumber(out object value)
            {
                value = null;
                int start = Pos;
                if (Pos < s.Length && s[Pos] == '-') Pos++;
                while (Pos < s.Length)
                {
                    char c = s[Pos];
                    if ((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') Pos++;
                    else break;
                }
                double d;
                if (!double.TryParse(s.Substring(start, Pos - start), NumberStyles.Float, CultureInfo.InvariantCulture, out d))
                    return Fail("bad number");
                value = d;
                return true;
            }

            bool ReadString(out string value)
            {
                value = null;
                Pos++; // opening quote
                var sb = new StringBuilder();
                while (Pos < s.Length)
                {
                    char c = s[Pos++];
                    if (c == '"') { value = sb.ToString(); return true; }
                    if (c != '\\') { sb.Append(c); continue; }
                    if (Pos >= s.Length) break;
                    char e = s[Pos++];
                    switch (e)
                    {
                        case '"': sb.Append('"'); break;
                        case '\\': sb.Append('\\'); break;
                        case '/': sb.Append('/'); break;
                        case 'b': sb.Append('\b'); break;
                        case 'f': sb.Append('\f'); break;
                        case 'n': sb.Append('\n'); break;
                        case 'r': sb.Append('\r'); break;
                        case 't': sb.Append('\t'); break;
                        case 'u':
                            int code;
                            if (Pos + 4 > s.Length || !int.TryParse(s.Substring(Pos, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out code))
                                return Fail("bad \\u escape");
                            sb.Append((char)code);
                            Pos += 4;
                            break;
                        default: return Fail("bad escape");
                    }
                }
                return Fail("unterminated string");
            }

            bool ReadArray(int depth, out object value)
            {
                value = null;
                var list = new List<object>();
                Pos++;
                SkipWs();
                if (Pos < s.Length && s[Pos] == ']') { Pos++; value = list; return true; }
                while (true)
                {
                    SkipWs();
                    object item;
                    if (!ReadValue(depth + 1, out item)) return false;
                    list.Add(item);
                    SkipWs();
                    if (Pos >= s.Length) return Fail("unterminated array");
                    char c = s[Pos++];
                    if (c == ']') { value = list; return true; }
                    if (c != ',') return Fail("expected , or ]");
                }
            }

            bool ReadObject(int depth, out object value)
            {
                value = null;
                var obj = new Dictionary<string, object>();
                Pos++;
                SkipWs();
                if (Pos < s.Length && s[Pos] == '}') { Pos++; value = obj; return true; }
                while (true)
                {
                    SkipWs();
                    if (Pos >= s.Length || s[Pos] != '"') return Fail("expected a key");
                    string key;
                    if (!ReadString(out key)) return false;
                    SkipWs();
                    if (Pos >= s.Length || s[Pos] != ':') return Fail("expected :");
                    Pos++;
                    SkipWs();
                    object item;
                    if (!ReadValue(depth + 1, out item)) return false;
                    obj[key] = item;
                    SkipWs();
                    if (Pos >= s.Length) return Fail("unterminated object");
                    char c = s[Pos++];
                    if (c == '}') { value = obj; return true; }
                    if (c != ',') return Fail("expected , or }");
                }
            }
        }
    }
}
