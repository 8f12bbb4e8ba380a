package androidx.test.ext.junit.runners;
public final class AndroidJUnit4 extends org.junit.runners.BlockJUnit4ClassRunner {
    public AndroidJUnit4(Class<?> klass) throws org.junit.runners.model.InitializationError { super(klass); }
}
