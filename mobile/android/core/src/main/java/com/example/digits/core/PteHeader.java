package com.example.digits.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * The head of an ExecuTorch program (.pte): the flatbuffer's file identifier at bytes 4..8 and the optional
 * extended header ("eh00") after it, which says how long the program is and where its data segments lie
 * (executorch/exir/_serialize/_program.py, schema/extended_header.cpp).
 *
 * <p>The app reads it before handing the file to the native runtime, so that a truncated copy or a file of
 * another format is reported as such instead of as a native load error.
 */
public final class PteHeader {
    /** The identifier of the program schema that executorch-android 1.5.1 (app/build.gradle) reads. */
    public static final String IDENTIFIER = "ET12";
    /** Bytes to read for {@link #parse}: schema/extended_header.cpp's kNumHeadBytes. */
    public static final int HEAD_BYTES = 64;

    public final String identifier;
    /** Fields of the extended header; -1 when the file has none (an older or minimal program). */
    public final long programSize;
    public final long segmentBaseOffset;
    public final long segmentDataSize;

    private PteHeader(String identifier, long programSize, long segmentBaseOffset, long segmentDataSize) {
        this.identifier = identifier;
        this.programSize = programSize;
        this.segmentBaseOffset = segmentBaseOffset;
        this.segmentDataSize = segmentDataSize;
    }

    /**
     * Parses the first bytes of a .pte and checks them against the whole file's length.
     *
     * @throws IllegalArgumentException when the bytes are not an ExecuTorch program this runtime reads, or
     *     the file is shorter than its header says
     */
    public static PteHeader parse(byte[] head, long fileLength, String what) {
        if (head.length < 8) {
            throw new IllegalArgumentException(what + ": " + head.length + " bytes, too short for an ExecuTorch program");
        }
        String identifier = new String(head, 4, 4, StandardCharsets.ISO_8859_1);
        if (!IDENTIFIER.equals(identifier)) {
            throw new IllegalArgumentException(what + ": file identifier '" + printable(identifier) + "', an ExecuTorch "
                    + "program this runtime reads has '" + IDENTIFIER + "' (not a .pte, or another schema version)");
        }
        ByteBuffer buffer = ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN);
        if (head.length < 32 || head[8] != 'e' || head[9] != 'h' || head[10] != '0' || head[11] != '0') {
            return new PteHeader(identifier, -1, -1, -1);
        }
        long length = buffer.getInt(12) & 0xffffffffL;
        if (length < 24) {
            throw new IllegalArgumentException(what + ": extended header of " + length + " bytes, at least 24 expected");
        }
        long programSize = buffer.getLong(16);
        long segmentBase = buffer.getLong(24);
        long segmentSize = length > 24 && head.length >= 40 ? buffer.getLong(32) : 0;
        if (programSize <= 0 || programSize > fileLength || segmentBase < 0 || segmentSize < 0
                || segmentBase + segmentSize > fileLength) {
            throw new IllegalArgumentException(what + ": the header says program " + programSize + " bytes, segments "
                    + segmentSize + " bytes from " + segmentBase + ", but the file has " + fileLength
                    + " bytes (truncated copy?)");
        }
        return new PteHeader(identifier, programSize, segmentBase, segmentSize);
    }

    private static String printable(String s) {
        StringBuilder out = new StringBuilder();
        for (char c : s.toCharArray()) {
            out.append(c >= 0x20 && c < 0x7f ? String.valueOf(c) : String.format("\\x%02x", (int) c));
        }
        return out.toString();
    }
}
