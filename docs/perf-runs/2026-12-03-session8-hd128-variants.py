import os, shutil, subprocess, sys
src='/work/main/ops/src/main/cuda'
def make(name, traits128, prod=None, cons=None, ns176=False):
    d=f'/tmp/var/{name}'; shutil.rmtree(d, ignore_errors=True); shutil.copytree(src, d)
    s=open(f'{d}/flash_fwd_sm90.cu').read()
    cut=s.index('FLASHDJL_SM90_DIMS(fp16, __half)\nFLASHDJL_SM90_DIMS(bf16')
    s=s[:cut]
    old='template <int V> struct TraitsFor<128, V> : Traits<128, 128, 2> {};'
    assert old in s
    s=s.replace(old, f'template <int V> struct TraitsFor<128, V> : {traits128} {{}};')
    if prod: s=s.replace('static constexpr int kProducerRegs = 56;', f'static constexpr int kProducerRegs = {prod};')
    if cons: s=s.replace('static constexpr int kConsumerRegs = 224;', f'static constexpr int kConsumerRegs = {cons};')
    for dt,T in (('fp16','__half'),('bf16','__nv_bfloat16')):
        for v,V in (('plain','kPlain'),('causal','kCausal')):
            s+=f'FLASHDJL_SM90_KERNEL({dt}, {T}, 128, {v}, {V})\n'
    open(f'{d}/flash_fwd_sm90.cu','w').write(s)
    if ns176:
        g=open(f'{d}/gen_wgmma.py').read().replace('NS = [64, 80, 128, 256]','NS = [64, 80, 128, 176, 256]')
        open(f'{d}/gen_wgmma.py','w').write(g)
        out=subprocess.run(['python3','gen_wgmma.py'],cwd=d,capture_output=True,text=True).stdout
        open(f'{d}/flash_wgmma.cuh','w').write(out)
make('base','Traits<128, 128, 2>')
make('n176','Traits<128, 176, 2>',prod=24,cons=240,ns176=True)
make('n176r56','Traits<128, 176, 2>',ns176=True)
make('s3','Traits<128, 128, 3>')
make('s3r72','Traits<128, 128, 3>',prod=72,cons=216)
