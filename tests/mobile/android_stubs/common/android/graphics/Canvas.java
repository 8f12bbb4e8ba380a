package android.graphics;
public class Canvas {
    public Canvas() {}
    public Canvas(Bitmap bitmap) {}
    public void drawBitmap(Bitmap bitmap, float left, float top, Paint paint) {}
    public void drawPath(Path path, Paint paint) {}
    public void drawRect(float left, float top, float right, float bottom, Paint paint) {}
}
