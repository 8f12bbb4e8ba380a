package com.example.digits;

import android.content.Context;
import android.graphics.Bitmap;
import android.graphics.Canvas;
import android.graphics.Color;
import android.graphics.Paint;
import android.graphics.Path;
import android.util.AttributeSet;
import android.view.MotionEvent;
import android.view.View;

/**
 * A finger-drawing surface. Strokes go into an offscreen bitmap whose alpha channel is the ink, which
 * {@link #ink()} hands to the core's preprocessing (Digits8x8) as values in [0, 1].
 */
public final class DrawView extends View {
    /** Called when a stroke ends, with the ink image. */
    interface Listener {
        void onStroke(float[] ink, int width, int height);
    }

    private final Paint paint = new Paint(Paint.ANTI_ALIAS_FLAG);
    private final Path path = new Path();
    private Bitmap bitmap;
    private Canvas bitmapCanvas;
    private Listener listener;

    public DrawView(Context context, AttributeSet attrs) {
        super(context, attrs);
        paint.setColor(Color.BLACK);
        paint.setStyle(Paint.Style.STROKE);
        paint.setStrokeCap(Paint.Cap.ROUND);
        paint.setStrokeJoin(Paint.Join.ROUND);
        setBackgroundColor(Color.WHITE);
    }

    void setListener(Listener listener) {
        this.listener = listener;
    }

    void clear() {
        if (bitmap != null) {
            bitmap.eraseColor(Color.TRANSPARENT);
        }
        path.reset();
        invalidate();
    }

    /** Row-major alpha of every pixel, 0 = no ink. */
    float[] ink() {
        int w = bitmap.getWidth();
        int h = bitmap.getHeight();
        int[] pixels = new int[w * h];
        bitmap.getPixels(pixels, 0, w, 0, 0, w, h);
        float[] ink = new float[pixels.length];
        for (int i = 0; i < pixels.length; i++) {
            ink[i] = Color.alpha(pixels[i]) / 255f;
        }
        return ink;
    }

    @Override
    protected void onSizeChanged(int w, int h, int oldW, int oldH) {
        bitmap = Bitmap.createBitmap(w, h, Bitmap.Config.ARGB_8888);
        bitmapCanvas = new Canvas(bitmap);
        // Strokes about a tenth of a digit drawn across most of the box, like the training bitmaps' pen.
        paint.setStrokeWidth(Math.min(w, h) / 14f);
    }

    @Override
    protected void onDraw(Canvas canvas) {
        canvas.drawBitmap(bitmap, 0, 0, null);
        canvas.drawPath(path, paint);
    }

    @Override
    public boolean onTouchEvent(MotionEvent event) {
        float x = event.getX();
        float y = event.getY();
        switch (event.getActionMasked()) {
            case MotionEvent.ACTION_DOWN:
                getParent().requestDisallowInterceptTouchEvent(true); // keep the ScrollView from scrolling
                path.moveTo(x, y);
                path.lineTo(x, y); // a tap leaves a dot
                break;
            case MotionEvent.ACTION_MOVE:
                path.lineTo(x, y);
                break;
            case MotionEvent.ACTION_UP:
                bitmapCanvas.drawPath(path, paint);
                path.reset();
                if (listener != null) {
                    listener.onStroke(ink(), bitmap.getWidth(), bitmap.getHeight());
                }
                break;
            default:
                return false;
        }
        invalidate();
        return true;
    }
}
