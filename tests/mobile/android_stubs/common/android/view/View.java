package android.view;
public class View {
    public interface OnClickListener { void onClick(View v); }
    public View(android.content.Context context) {}
    public View(android.content.Context context, android.util.AttributeSet attrs) {}
    public void setOnClickListener(OnClickListener l) {}
    public void setId(int id) {}
    public void invalidate() {}
    public final int getWidth() { return 0; }
    public final int getHeight() { return 0; }
    public void setBackgroundColor(int color) {}
    public final ViewParent getParent() { throw new UnsupportedOperationException(); }
    protected void onDraw(android.graphics.Canvas canvas) {}
    protected void onSizeChanged(int w, int h, int oldw, int oldh) {}
    public boolean onTouchEvent(MotionEvent event) { return false; }
}
