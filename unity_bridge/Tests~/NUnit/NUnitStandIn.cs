// The few NUnit types Tests/Runtime uses, so CI compiles and runs those tests with Mono's mcs outside
// Unity (Unity's Test Framework brings the real NUnit 3). Not shipped: the folder ends in "~".
// Tests~/Probe/TestRunner.cs finds [TestFixture] classes and runs their [Test] methods.
using System;

namespace NUnit.Framework
{
    [AttributeUsage(AttributeTargets.Class)]
    public sealed class TestFixtureAttribute : Attribute { }

    [AttributeUsage(AttributeTargets.Method)]
    public sealed class TestAttribute : Attribute { }

    public delegate void TestDelegate();

    public sealed class AssertionException : Exception
    {
        public AssertionException(string message) : base(message) { }
    }

    public static class Assert
    {
        public static void Fail(string message) { throw new AssertionException(message); }

        public static void IsTrue(bool condition, string message = "") { if (!condition) Fail("expected true. " + message); }
        public static void IsFalse(bool condition, string message = "") { if (condition) Fail("expected false. " + message); }
        public static void IsNull(object value, string message = "") { if (value != null) Fail("expected null, got " + value + ". " + message); }
        public static void IsNotNull(object value, string message = "") { if (value == null) Fail("expected not null. " + message); }

        public static void AreSame(object expected, object actual, string message = "")
        {
            if (!ReferenceEquals(expected, actual)) Fail("expected the same object as <" + expected + "> but was <" + actual + ">. " + message);
        }

        public static void AreEqual(object expected, object actual, string message = "")
        {
            if (!Equals(expected, actual)) Fail("expected <" + expected + "> but was <" + actual + ">. " + message);
        }

        public static void AreEqual(double expected, double actual, double delta, string message = "")
        {
            if (double.IsNaN(actual) || Math.Abs(expected - actual) > delta)
                Fail("expected " + expected + " +/- " + delta + " but was " + actual + ". " + message);
        }

        public static void Less(double a, double b, string message = "") { if (!(a < b)) Fail("expected " + a + " < " + b + ". " + message); }
        public static void LessOrEqual(double a, double b, string message = "") { if (!(a <= b)) Fail("expected " + a + " <= " + b + ". " + message); }
        public static void Greater(double a, double b, string message = "") { if (!(a > b)) Fail("expected " + a + " > " + b + ". " + message); }

        public static T Throws<T>(TestDelegate code, string message = "") where T : Exception
        {
            try { code(); }
            catch (T e) { return e; }
            catch (Exception e) { Fail("expected " + typeof(T).Name + " but got " + e.GetType().Name + ": " + e.Message + ". " + message); }
            Fail("expected " + typeof(T).Name + " but nothing was thrown. " + message);
            return null;
        }
    }
}
